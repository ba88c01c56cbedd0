// A job: one running reply, turning engine output into the events of §3 in its stream's log.
#pragma once

#include "broker/broker.hpp"
#include "engine/engine.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <functional>
#include <mutex>

namespace spool {

// Settings of one job.
struct JobOptions {
  std::uint64_t max_events = 100000;  // log cap (§4.2); the last slot is kept for the error event
  bool fold = false;                  // keep the folded message for a synchronous reply
  bool upstream_signatures =
      false;  // thinking blocks start with "signature": "" (as Anthropic's): the upstream's comes last
  std::atomic<std::uint64_t>* output_tokens = nullptr;  // where produced tokens are also counted (metrics)
};

// The producer of one stream. Engine calls (EngineSink) and cancel() may come from different
// threads; one mutex orders them, so cancel's terminal events are always the log's last.
class Job final : public EngineSink {
 public:
  // `on_terminal` runs once, right after the stream became terminal (outside the job's lock).
  Job(std::string id, std::string model, std::shared_ptr<StreamWriter> writer, JobOptions opts,
      std::function<void()> on_terminal);

  // Keeps the engine run so cancel() can stop it.
  void attach(std::shared_ptr<EngineRun> run);

  // Ends the stream as cancelled (§3.3) unless it is already terminal, and stops the engine.
  // When it returns, the terminal events are in the log; returns the status the stream ended with
  // (not cancelled when it had already completed or failed).
  StreamStatus cancel();

  // Ends the stream with an error event unless already terminal.
  void fail(Error e) override;

  // True once the stream is terminal.
  bool terminal() const;

  // The folded message object (§1.6), valid once terminal; needs JobOptions::fold.
  boost::json::object folded() const;

  // The error that ended the job, if it failed.
  std::optional<Error> failure() const;

  const std::string& id() const { return id_; }

  // EngineSink
  void queued(std::optional<int> position) override;
  void begin(std::int64_t input_tokens) override;
  void thinking(std::string_view delta) override;
  void thinking_signature(std::string_view signature) override;
  void text(std::string_view delta) override;
  void tool_use(std::string_view name) override;
  void tool_input(std::string_view partial_json) override;
  void output_tokens(std::int64_t n) override;
  // True while the job waits behind its engine's concurrency limit.
  bool waiting_in_queue() const;
  void finish(StopReason reason, std::optional<std::string> stop_sequence) override;
  bool stopped() const override;

 private:
  enum class BlockKind { none, text, thinking, tool_use };

  // Runs `f` under the lock unless terminal; runs on_terminal if `f` ended the job.
  template <class F>
  void with_lock(F&& f);

  // All below: call with mu_ held.
  bool append(std::string_view type,
              std::string json);  // queued until flush(); false when the log is full (job then failed)
  // Publishes the queued events (and `status`) with one wakeup of the observers.
  void flush(std::optional<StreamStatus> status = std::nullopt,
             std::optional<std::string> error_message = std::nullopt);
  void ensure_started();
  void open_block(BlockKind kind, std::string_view tool_name = {});
  void close_block();
  void end(StreamStatus status, std::string_view stop_reason, const std::optional<std::string>& stop_sequence);
  void fail_locked(Error e);
  void terminate();  // runs on_terminal after unlocking

  const std::string id_;
  const std::string model_;
  const std::shared_ptr<StreamWriter> writer_;
  const JobOptions opts_;
  std::function<void()> on_terminal_;

  mutable std::mutex mu_;
  bool waiting_in_queue_ = false;  // behind its engine's concurrency limit
  std::shared_ptr<EngineRun> run_;
  std::uint64_t appended_ = 0;     // events in the log: this job is its only writer
  std::vector<NewEvent> pending_;  // appended but not yet published
  bool started_ = false;
  bool terminal_ = false;
  StreamStatus ended_as_ = StreamStatus::pending;  // the terminal status, once terminal_
  bool cancel_requested_ = false;
  bool processing_ = false;
  std::string message_id_;
  Usage usage_;
  int block_index_ = -1;
  BlockKind block_ = BlockKind::none;
  std::string block_id_;
  std::string signature_;  // of the open thinking block
  std::string tool_json_;  // accumulated input of the open tool_use block
  std::string held_json_;  // its latest fragment, not yet in the log (the last one carries the parsed input)
  std::optional<Error> failure_;
  // folding
  boost::json::array content_;
  std::string stop_reason_;
  std::optional<std::string> stop_sequence_;
};

}  // namespace spool
