// The bodies the routes stream: SSE of a stream for one observer, and the folded reply of a
// synchronous job. Both read a broker cursor on the connection's executor.
#pragma once

#include "api/metrics.hpp"
#include "broker/broker.hpp"
#include "http/message.hpp"
#include "jobs/job.hpp"

#include <chrono>
#include <functional>
#include <memory>

namespace spool {

class Pinger;

// SSE of one stream for one observer: stored frames as they are, pings when idle.
class SseSource final : public http::BodySource {
 public:
  SseSource(std::unique_ptr<Cursor> cursor, std::chrono::milliseconds ping, Metrics& metrics,
            const boost::asio::any_io_executor& ex);
  ~SseSource() override;
  SseSource(const SseSource&) = delete;
  SseSource& operator=(const SseSource&) = delete;

  boost::asio::awaitable<http::ResponseHead> head() override;
  boost::asio::awaitable<http::BodyChunk> next() override;
  void abort(http::AbortReason why) override;

  std::function<void()> on_client_gone;  // the synchronous route cancels its job here
  std::function<void()> on_done;         // the synchronous route deletes its stream here

 private:
  std::unique_ptr<Cursor> cursor_;
  Metrics& metrics_;
  std::shared_ptr<Pinger> pinger_;
  bool aborted_ = false;
};

// A synchronous non-streaming reply: waits for the job, then answers the folded message (or
// the job's error). `on_done` runs when the reply is destroyed.
class FoldedReply final : public http::BodySource {
 public:
  FoldedReply(std::unique_ptr<Cursor> cursor, std::shared_ptr<Job> job, std::function<void()> on_done);
  ~FoldedReply() override;
  FoldedReply(const FoldedReply&) = delete;
  FoldedReply& operator=(const FoldedReply&) = delete;

  boost::asio::awaitable<http::ResponseHead> head() override;
  boost::asio::awaitable<http::BodyChunk> next() override;
  void abort(http::AbortReason why) override;

 private:
  std::unique_ptr<Cursor> cursor_;
  std::shared_ptr<Job> job_;
  std::function<void()> on_done_;
  std::string body_;
  boost::asio::const_buffer body_buffer_;
};

}  // namespace spool
