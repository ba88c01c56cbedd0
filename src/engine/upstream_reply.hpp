// A streamed upstream reply being decoded into a sink: the part every upstream protocol shares.
#pragma once

#include "engine/engine.hpp"
#include "engine/upstream_limits.hpp"
#include "http/sse_parser.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spool {

// Largest token count or index taken from an upstream: 2^53, what every JSON reader keeps exact.
inline constexpr std::int64_t kMaxUpstreamCount = std::int64_t{1} << 53;

// `v` as a whole number from 0 to `max` (an integer, or a double with no fraction), else nullopt.
std::optional<std::int64_t> whole_number(const boost::json::value& v, std::int64_t max = kMaxUpstreamCount);

// Decodes one streamed reply into a sink; reports at most one end (finish or fail).
class UpstreamReply {
 public:
  explicit UpstreamReply(EngineSink& sink) : sink_(sink) {}
  virtual ~UpstreamReply() = default;
  UpstreamReply(const UpstreamReply&) = delete;
  UpstreamReply& operator=(const UpstreamReply&) = delete;

  // One SSE event; false once the reply is over (finished, stopped, or failed into the sink).
  virtual bool on_event(const SseEvent& e) = 0;
  // The upstream closed the stream.
  virtual void on_end() = 0;
  // True once the sink was finished or failed.
  bool done() const { return done_; }
  // Bounds the deltas this reply accepts (the default: UpstreamLimits{}).
  void set_limits(const UpstreamLimits& limits) { limits_ = limits; }

 protected:
  // Ends the reply with an upstream error, unless it already ended.
  void fail(std::string explanation);
  // The usage count at `field` (e.g. "usage.prompt_tokens"), or nullopt after failing the reply
  // with "upstream sent an invalid usage value" when it is not a whole number from 0 to 2^53.
  std::optional<std::int64_t> usage_value(const boost::json::value& v, std::string_view field);
  // True when a `kind` delta ("text", "thinking", "tool input") fits max_delta_bytes; else fails the reply.
  bool delta_fits(std::string_view delta, std::string_view kind);

  EngineSink& sink_;
  bool done_ = false;
  UpstreamLimits limits_;
};

}  // namespace spool
