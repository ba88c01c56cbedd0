#include "api/body_sources.hpp"

#include "api/http_error.hpp"
#include "stream/events.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/json/serialize.hpp>

namespace spool {
namespace asio = boost::asio;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

// Sends a ping after `interval` without a frame: one timer per observer, re-armed only when it
// fires, never per event. Shared with its timer's handler, which may outlive the source.
class Pinger : public std::enable_shared_from_this<Pinger> {
 public:
  Pinger(const asio::any_io_executor& ex, std::chrono::milliseconds interval, Cursor& cursor)
      : timer_(ex), interval_(interval), cursor_(&cursor), last_frame_(Clock::now()) {}

  void start() { arm(last_frame_ + interval_); }
  void sent() { last_frame_ = Clock::now(); }
  void stop() {
    cursor_ = nullptr;
    timer_.cancel();
  }

 private:
  void arm(Clock::time_point at) {
    timer_.expires_at(at);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || !self->cursor_) return;
      const auto due = self->last_frame_ + self->interval_;
      if (Clock::now() >= due) {
        self->cursor_->interrupt();
        self->arm(Clock::now() + self->interval_);
      } else {
        self->arm(due);
      }
    });
  }

  asio::steady_timer timer_;
  std::chrono::milliseconds interval_;
  Cursor* cursor_;
  Clock::time_point last_frame_;
};

SseSource::SseSource(std::unique_ptr<Cursor> cursor, std::chrono::milliseconds ping, Metrics& metrics,
                     const asio::any_io_executor& ex)
    : cursor_(std::move(cursor)), metrics_(metrics), pinger_(std::make_shared<Pinger>(ex, ping, *cursor_)) {}

SseSource::~SseSource() {
  pinger_->stop();
  if (on_done) on_done();
}

asio::awaitable<http::ResponseHead> SseSource::head() {
  http::ResponseHead h;
  h.content_type = "text/event-stream; charset=utf-8";
  h.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
  pinger_->start();
  co_return h;
}

asio::awaitable<http::BodyChunk> SseSource::next() {
  http::BodyChunk out;
  if (aborted_) {
    out.last = true;
    co_return out;
  }
  const ReadChunk chunk = co_await cursor_->next();
  switch (chunk.kind) {
    case ReadChunk::Kind::end:
      out.last = true;
      break;
    case ReadChunk::Kind::interrupted: {
      static const asio::const_buffer ping(events::ping_frame().data(), events::ping_frame().size());
      out.buffers = {&ping, 1};
      pinger_->sent();
      break;
    }
    case ReadChunk::Kind::data: {
      std::size_t bytes = 0;
      for (const auto& b : chunk.buffers) bytes += b.size();
      metrics_.sent(chunk.events, bytes);
      out.buffers = chunk.buffers;
      pinger_->sent();
      break;
    }
  }
  co_return out;
}

void SseSource::abort(http::AbortReason why) {
  aborted_ = true;
  cursor_->abort();
  if (why == http::AbortReason::client_gone && on_client_gone) on_client_gone();
}

FoldedReply::FoldedReply(std::unique_ptr<Cursor> cursor, std::shared_ptr<Job> job, std::function<void()> on_done)
    : cursor_(std::move(cursor)), job_(std::move(job)), on_done_(std::move(on_done)) {}

FoldedReply::~FoldedReply() { on_done_(); }

asio::awaitable<http::ResponseHead> FoldedReply::head() {
  for (;;) {
    const ReadChunk c = co_await cursor_->next();
    if (c.kind == ReadChunk::Kind::end) break;
  }
  http::ResponseHead h;
  h.content_type = "application/json";
  if (auto err = job_->failure()) {
    http::Response r = error_response(*err, job_->id());
    h.status = r.status;
    body_ = std::move(r.body);
  } else {
    body_ = json::serialize(job_->folded());
  }
  h.headers.emplace_back("Content-Length", std::to_string(body_.size()));
  h.close = false;
  co_return h;
}

asio::awaitable<http::BodyChunk> FoldedReply::next() {
  http::BodyChunk out;
  body_buffer_ = asio::const_buffer(body_.data(), body_.size());
  out.buffers = {&body_buffer_, 1};
  out.last = true;
  co_return out;
}

void FoldedReply::abort(http::AbortReason /*why*/) {
  cursor_->abort();
  job_->cancel();
}

}  // namespace spool
