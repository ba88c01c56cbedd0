// The `llama` engine (§7): a GGUF model run in-process by llama.cpp. The only file that
// includes llama.h is llama_engine.cpp.
#pragma once

#include "engine/engine.hpp"

#include <memory>
#include <optional>
#include <string>

namespace spool {

// Settings of one llama model.
struct LlamaOptions {
  std::string model_path;
  int parallel = 4;                        // sequences decoded together in one batch
  int context = 4096;                      // tokens per sequence (prompt + reply)
  int threads = 0;                         // decode threads; 0 = one per core
  int batch = 512;                         // most tokens per llama_decode call
  std::int64_t default_max_tokens = 1024;  // for requests without max_tokens
};

// Loads the model on its own thread and decodes every running job there, `parallel` at a
// time in one batch; further jobs wait (queued) in arrival order. A model that cannot be
// loaded makes every job end with a clear error.
class LlamaEngine final : public Engine {
 public:
  explicit LlamaEngine(LlamaOptions opts);
  ~LlamaEngine() override;
  LlamaEngine(const LlamaEngine&) = delete;
  LlamaEngine& operator=(const LlamaEngine&) = delete;

  std::shared_ptr<EngineRun> start(std::shared_ptr<const ChatRequest> req, std::shared_ptr<EngineSink> sink) override;
  Result<std::int64_t> count_tokens(const ChatRequest& req) override;
  // "loading ..." until the model is loaded, then the load error if it failed.
  std::optional<std::string> unready_reason() const override;
  // Sampling is then constrained by a grammar made from the schema (llama.cpp's json_schema_to_grammar).
  bool follows_output_format() const override { return true; }
  // Whether json_schema_to_grammar can convert the schema.
  Status check_output_format(const OutputFormat& format) const override;

  // Blocks until the model is loaded or failed to load; the load error, if any. (Tests and
  // start-up only: never on a network thread.)
  std::optional<Error> wait_loaded() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace spool
