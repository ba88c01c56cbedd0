// The engine interface: what produces a reply's tokens. Engines know nothing of HTTP or brokers.
#pragma once

#include "core/result.hpp"
#include "stream/chat_request.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace spool {

// Why a reply ended.
enum class StopReason { end_turn, max_tokens, stop_sequence, tool_use };

// Wire name of a stop reason.
std::string_view to_string(StopReason r);

// Receives one reply as it is produced. Called from the engine's own thread(s); every call
// is cheap and never blocks on the network. After stopped() turns true, further calls are ignored.
class EngineSink {
 public:
  virtual ~EngineSink() = default;
  // The job waits behind the engine's concurrency limit at `position` (1 = next); nullopt once it runs.
  virtual void queued(std::optional<int> position) = 0;
  // The reply starts; `input_tokens` counts the prompt.
  virtual void begin(std::int64_t input_tokens) = 0;
  // Reasoning text; opens a thinking block if none is open.
  virtual void thinking(std::string_view delta) = 0;
  // The open thinking block's signature, as an upstream gave it (else the job makes one).
  virtual void thinking_signature(std::string_view signature) = 0;
  // Reply text; opens a text block if none is open.
  virtual void text(std::string_view delta) = 0;
  // Opens a tool_use block calling `name`.
  virtual void tool_use(std::string_view name) = 0;
  // A fragment of the open tool_use block's input JSON.
  virtual void tool_input(std::string_view partial_json) = 0;
  // Output tokens produced so far.
  virtual void output_tokens(std::int64_t n) = 0;
  // The reply ended normally.
  virtual void finish(StopReason reason, std::optional<std::string> stop_sequence) = 0;
  // The reply failed; ends the stream with an `error` event.
  virtual void fail(Error e) = 0;
  // True once the job was cancelled: stop producing before the next token.
  virtual bool stopped() const = 0;
};

// One running reply. cancel() may be called from any thread, any number of times.
class EngineRun {
 public:
  virtual ~EngineRun() = default;
  // Stops producing before the next token; whatever the engine still sends is ignored by the sink.
  virtual void cancel() = 0;
};

// A way to produce replies (mock, llama, openai, anthropic).
class Engine {
 public:
  virtual ~Engine() = default;
  // Starts producing a reply for `req` into `sink`; returns at once.
  virtual std::shared_ptr<EngineRun> start(std::shared_ptr<const ChatRequest> req,
                                           std::shared_ptr<EngineSink> sink) = 0;
  // Tokens the prompt of `req` takes with this engine's tokenizer.
  virtual Result<std::int64_t> count_tokens(const ChatRequest& req) = 0;
  // Why the engine cannot serve now (for /health), or nullopt when it can.
  virtual std::optional<std::string> unready_reason() const { return std::nullopt; }
  // Whether replies can be constrained to ChatRequest::output_format (a JSON schema).
  virtual bool follows_output_format() const { return false; }
  // True when thinking signatures come from an upstream, known only as a thinking block ends
  // (its signature_delta); false when the job makes them.
  virtual bool signs_thinking() const { return false; }
  // Why this engine cannot follow `format` although it follows formats (a schema it cannot
  // turn into a constraint), as invalid_request; Ok when it can. Cheap: called before a job starts.
  virtual Status check_output_format(const OutputFormat& format) const { return Ok{}; }
};

}  // namespace spool
