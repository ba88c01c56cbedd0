#include "jobs/job.hpp"

#include "core/error_body.hpp"
#include "core/ids.hpp"
#include "core/utf8.hpp"
#include "stream/events.hpp"

#include <boost/json/serialize.hpp>

namespace spool {
namespace json = boost::json;

Job::Job(std::string id, std::string model, std::shared_ptr<StreamWriter> writer, JobOptions opts,
         std::function<void()> on_terminal)
    : id_(std::move(id)),
      model_(std::move(model)),
      writer_(std::move(writer)),
      opts_(opts),
      on_terminal_(std::move(on_terminal)),
      message_id_(prefixed_hex_id("msg_")) {}

void Job::attach(std::shared_ptr<EngineRun> run) {
  std::unique_lock lk(mu_);
  if (terminal_) {
    lk.unlock();
    run->cancel();
    return;
  }
  run_ = std::move(run);
}

bool Job::append(std::string_view type, std::string json) {
  // Every event but the last (message_stop) must leave a slot free: for what follows it, or
  // for the error event that ends a job whose log is full.
  const std::uint64_t needed = type == "message_stop" ? 1 : 2;
  if (type != "error" && appended_ + pending_.size() + needed > opts_.max_events) {
    fail_locked(make_error(Errc::internal,
                           "Stream exceeded maximum_stream_length of " + std::to_string(opts_.max_events) + " events"));
    return false;
  }
  pending_.push_back(NewEvent{std::string(type), std::move(json)});
  return true;
}

void Job::flush(std::optional<StreamStatus> status, std::optional<std::string> error_message) {
  if (pending_.empty() && !status) return;
  appended_ = writer_->publish(pending_, status, std::move(error_message));
  pending_.clear();
}

void Job::ensure_started() {
  if (started_) return;
  started_ = true;
  append("message_start", events::message_start(message_id_, model_, usage_.input_tokens));
}

void Job::open_block(BlockKind kind, std::string_view tool_name) {
  close_block();
  if (terminal_) return;
  block_ = kind;
  ++block_index_;
  block_id_ = prefixed_hex_id("block_");
  json::object block;
  switch (kind) {
    case BlockKind::text:
      block = {{"type", "text"}, {"text", ""}};
      break;
    case BlockKind::thinking:
      signature_ = prefixed_hex_id("sig_");  // unless the upstream gives one
      block = {{"type", "thinking"}, {"thinking", ""}, {"signature", opts_.upstream_signatures ? "" : signature_}};
      break;
    case BlockKind::tool_use:
      block = {{"type", "tool_use"}, {"id", prefixed_hex_id("tool_")}, {"name", tool_name}, {"input", json::object{}}};
      tool_json_.clear();
      break;
    case BlockKind::none:
      return;
  }
  if (opts_.fold) content_.push_back(block);
  if (!processing_) {
    processing_ = true;
    writer_->set_status(StreamStatus::processing);
  }
  append("content_block_start", events::content_block_start(block_index_, block_id_, std::move(block)));
}

void Job::close_block() {
  if (block_ == BlockKind::none) return;
  if (block_ == BlockKind::tool_use) {
    // The input is parsed once, here: the last fragment carries it, and so does the fold.
    json::object input = events::parse_partial_object(tool_json_);
    if (!held_json_.empty()) {
      append("content_block_delta", events::input_json_delta(block_index_, block_id_, held_json_, &input));
      held_json_.clear();
      if (terminal_) return;  // the log filled up
    }
    if (opts_.fold) content_.back().as_object()["input"] = std::move(input);
    tool_json_.clear();
  } else if (block_ == BlockKind::thinking) {
    if (opts_.fold) content_.back().as_object()["signature"] = signature_;
    append("content_block_delta", events::signature_delta(block_index_, block_id_, signature_));
    if (terminal_) return;  // the log filled up
  }
  block_ = BlockKind::none;
  append("content_block_stop", events::content_block_stop(block_index_, block_id_));
}

template <class F>
void Job::with_lock(F&& f) {
  bool ended = false;
  {
    std::lock_guard lk(mu_);
    if (terminal_) return;
    f();
    flush();
    ended = terminal_;
  }
  if (ended) terminate();
}

void Job::begin(std::int64_t input_tokens) {
  with_lock([&] {
    usage_.input_tokens = input_tokens;
    writer_->set_usage(usage_);
    ensure_started();
  });
}

void Job::thinking_signature(std::string_view signature) {
  with_lock([&] {
    if (block_ == BlockKind::thinking) signature_ = signature;
  });
}

void Job::thinking(std::string_view delta) {
  with_lock([&] {
    ensure_started();
    if (block_ != BlockKind::thinking) open_block(BlockKind::thinking);
    if (terminal_) return;
    if (opts_.fold) {
      auto& s = content_.back().as_object()["thinking"].as_string();
      s.append(delta);
    }
    append("content_block_delta", events::thinking_delta(block_index_, block_id_, delta));
  });
}

void Job::text(std::string_view delta) {
  with_lock([&] {
    ensure_started();
    if (block_ != BlockKind::text) open_block(BlockKind::text);
    if (terminal_) return;
    if (opts_.fold) content_.back().as_object()["text"].as_string().append(delta);
    append("content_block_delta", events::text_delta(block_index_, block_id_, delta));
  });
}

void Job::tool_use(std::string_view name) {
  with_lock([&] {
    ensure_started();
    open_block(BlockKind::tool_use, name);
  });
}

void Job::tool_input(std::string_view partial_json) {
  with_lock([&] {
    if (terminal_ || block_ != BlockKind::tool_use) return;
    // Deltas go out as they are; the latest is held back so the block's last one can carry the parsed input.
    tool_json_.append(partial_json);
    if (!held_json_.empty()) {
      append("content_block_delta", events::input_json_delta(block_index_, block_id_, held_json_, nullptr));
    }
    held_json_.assign(partial_json);
  });
}

void Job::queued(std::optional<int> position) {
  std::lock_guard lk(mu_);
  if (terminal_) return;
  waiting_in_queue_ = position.has_value();
  writer_->set_queue_position(position);
}

bool Job::waiting_in_queue() const {
  std::lock_guard lk(mu_);
  return waiting_in_queue_ && !terminal_;
}

void Job::output_tokens(std::int64_t n) {
  std::lock_guard lk(mu_);
  if (terminal_) return;
  if (opts_.output_tokens != nullptr && n > usage_.output_tokens) {
    opts_.output_tokens->fetch_add(static_cast<std::uint64_t>(n - usage_.output_tokens), std::memory_order_relaxed);
  }
  usage_.output_tokens = n;
  writer_->set_usage(usage_);
}

void Job::end(StreamStatus status, std::string_view stop_reason, const std::optional<std::string>& stop_sequence) {
  ensure_started();
  close_block();
  if (terminal_) return;  // the log filled up while closing
  stop_reason_ = stop_reason;
  stop_sequence_ = stop_sequence;
  append("message_delta", events::message_delta(stop_reason, stop_sequence, usage_));
  append("message_stop", events::message_stop());
  if (terminal_) return;
  terminal_ = true;
  ended_as_ = status;
  writer_->set_usage(usage_);
  flush(status);
}

void Job::finish(StopReason reason, std::optional<std::string> stop_sequence) {
  {
    std::lock_guard lk(mu_);
    if (terminal_) return;
    end(StreamStatus::completed, to_string(reason), stop_sequence);
  }
  terminate();
}

void Job::fail_locked(Error e) {
  if (terminal_) return;
  // What the engine sent stays in the log: a held tool fragment goes out first, when there is room.
  if (!held_json_.empty() && block_ == BlockKind::tool_use && appended_ + pending_.size() + 2 <= opts_.max_events) {
    pending_.push_back(
        NewEvent{"content_block_delta", events::input_json_delta(block_index_, block_id_, held_json_, nullptr)});
  }
  held_json_.clear();
  terminal_ = true;
  ended_as_ = StreamStatus::error;
  e.explanation = to_valid_utf8(e.explanation);  // foreign text reaches the log and the status as UTF-8
  pending_.push_back(NewEvent{"error", error_body_text(e, id_)});
  flush(StreamStatus::error, e.explanation);
  failure_ = std::move(e);
}

void Job::fail(Error e) {
  {
    std::lock_guard lk(mu_);
    if (terminal_) return;
    fail_locked(std::move(e));
  }
  terminate();
}

StreamStatus Job::cancel() {
  std::shared_ptr<EngineRun> run;
  bool ended = false;
  StreamStatus status = StreamStatus::cancelled;
  {
    std::lock_guard lk(mu_);
    cancel_requested_ = true;
    run = run_;
    if (!terminal_) {
      end(StreamStatus::cancelled, "cancelled", std::nullopt);
      ended = true;
    }
    if (terminal_) status = ended_as_;  // error when the log filled up while closing
  }
  if (run) run->cancel();
  if (ended) terminate();
  return status;
}

void Job::terminate() {
  std::function<void()> cb;
  std::shared_ptr<EngineRun> run;
  {
    std::lock_guard lk(mu_);
    cb = std::move(on_terminal_);
    on_terminal_ = nullptr;
    run = std::move(run_);
  }
  if (run) run->cancel();
  if (cb) cb();
}

bool Job::terminal() const {
  std::lock_guard lk(mu_);
  return terminal_;
}

bool Job::stopped() const {
  std::lock_guard lk(mu_);
  return terminal_ || cancel_requested_;
}

std::optional<Error> Job::failure() const {
  std::lock_guard lk(mu_);
  return failure_;
}

json::object Job::folded() const {
  std::lock_guard lk(mu_);
  json::object usage{{"input_tokens", usage_.input_tokens}, {"output_tokens", usage_.output_tokens}};
  json::value seq = stop_sequence_ ? json::value(*stop_sequence_) : json::value(nullptr);
  json::value reason = stop_reason_.empty() ? json::value(nullptr) : json::value(stop_reason_);
  return {{"id", message_id_}, {"type", "message"},     {"role", "assistant"},  {"content", content_},
          {"model", model_},   {"stop_reason", reason}, {"stop_sequence", seq}, {"usage", usage}};
}

}  // namespace spool
