// make_tiny_gguf --vocab PATH --out PATH [--seed N]
// Writes a tiny random-weight llama-architecture GGUF (see tiny_gguf.hpp) with the tokenizer of
// PATH (one of llama.cpp's models/ggml-vocab-*.gguf, e.g. ggml-vocab-phi-3.gguf).
#include "tiny_gguf.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

int main(int argc, char** argv) {
  spool::testing::TinyGgufOptions opts;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--vocab" && has_value) {
      opts.vocab_path = argv[++i];
    } else if (arg == "--out" && has_value) {
      opts.out_path = argv[++i];
    } else if (arg == "--seed" && has_value) {
      opts.seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s --vocab PATH --out PATH [--seed N]\n", argv[0]);
      return arg == "-h" || arg == "--help" ? 0 : 2;
    }
  }
  if (opts.vocab_path.empty() || opts.out_path.empty()) {
    std::fprintf(stderr, "usage: %s --vocab PATH --out PATH [--seed N]\n", argv[0]);
    return 2;
  }
  try {
    spool::testing::write_tiny_gguf(opts);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "wrote %s\n", opts.out_path.c_str());
  return 0;
}
