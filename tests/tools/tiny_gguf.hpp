// A tiny random-weight llama-architecture GGUF for tests: real tokenizer (copied from one of
// llama.cpp's models/ggml-vocab-*.gguf), nonsense weights, loads and decodes in milliseconds.
#pragma once

#include <cstdint>
#include <string>

namespace spool::testing {

struct TinyGgufOptions {
  std::string vocab_path;   // a GGUF with tokenizer.* keys, e.g. <llama.cpp>/models/ggml-vocab-phi-3.gguf
  std::string out_path;     // the GGUF to write
  std::uint64_t seed = 42;  // same seed (and vocab) ⇒ byte-identical file
  std::uint32_t n_embd = 64;
  std::uint32_t n_head = 4;
  std::uint32_t n_head_kv = 4;
  std::uint32_t n_layer = 2;
  std::uint32_t n_ff = 128;
  std::uint32_t n_ctx_train = 512;
  float stdev = 1.0f;  // weights: uniform with this standard deviation / sqrt(fan-in)
};

// Chat template written when the vocab file has none (chatml; llama_chat_apply_template knows it).
extern const char* const kChatmlTemplate;

// Writes the model; throws std::runtime_error on failure.
void write_tiny_gguf(const TinyGgufOptions& opts);

}  // namespace spool::testing
