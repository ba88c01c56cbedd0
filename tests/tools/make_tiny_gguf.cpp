// make_tiny_gguf --vocab PATH --out PATH [--seed N] [--embd N] [--heads N] [--layers N] [--ff N] [--ctx N]
// Writes a tiny random-weight llama-architecture GGUF (see tiny_gguf.hpp) with the tokenizer of
// PATH (one of llama.cpp's models/ggml-vocab-*.gguf, e.g. ggml-vocab-phi-3.gguf). The shape
// options default to the test model's; the bench uses larger ones.
#include "tiny_gguf.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>

namespace {

constexpr const char* kUsage =
    "usage: %s --vocab PATH --out PATH [--seed N] [--embd N] [--heads N] [--layers N] [--ff N] [--ctx N]\n";

}  // namespace

int main(int argc, char** argv) {
  spool::testing::TinyGgufOptions opts;
  const std::pair<const char*, std::uint32_t*> shape[] = {
      {"--embd", &opts.n_embd}, {"--layers", &opts.n_layer}, {"--ff", &opts.n_ff}, {"--ctx", &opts.n_ctx_train}};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    bool known = has_value;
    if (arg == "--vocab" && has_value) {
      opts.vocab_path = argv[++i];
    } else if (arg == "--out" && has_value) {
      opts.out_path = argv[++i];
    } else if (arg == "--seed" && has_value) {
      opts.seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--heads" && has_value) {
      opts.n_head = opts.n_head_kv = static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      known = false;
      for (const auto& [name, field] : shape) {
        if (arg == name && has_value) {
          *field = static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 10));
          known = true;
        }
      }
    }
    if (!known) {
      std::fprintf(stderr, kUsage, argv[0]);
      return arg == "-h" || arg == "--help" ? 0 : 2;
    }
  }
  if (opts.vocab_path.empty() || opts.out_path.empty()) {
    std::fprintf(stderr, kUsage, argv[0]);
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
