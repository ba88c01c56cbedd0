// A streamed upstream reply being decoded into a sink: the part every upstream protocol shares.
#pragma once

#include "engine/engine.hpp"
#include "http/sse_parser.hpp"

#include <string>

namespace spool {

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

 protected:
  // Ends the reply with an upstream error, unless it already ended.
  void fail(std::string explanation) {
    if (done_) return;
    done_ = true;
    sink_.fail(make_error(Errc::upstream, std::move(explanation)));
  }

  EngineSink& sink_;
  bool done_ = false;
};

}  // namespace spool
