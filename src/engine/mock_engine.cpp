#include "engine/mock_engine.hpp"

#include "core/spawn.hpp"
#include "engine/schema_instance.hpp"
#include "engine/stop_matcher.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>

namespace spool {
namespace asio = boost::asio;

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::int64_t count_words(std::string_view text) {
  std::int64_t n = 0;
  bool in_word = false;
  for (char c : text) {
    if (is_space(c)) {
      in_word = false;
    } else if (!in_word) {
      in_word = true;
      ++n;
    }
  }
  return n;
}

// The input of a mock call of tool `name`: a minimal instance of its input_schema ({} when it
// requires nothing, or when no instance can be made), so a forced JSON tool gets valid JSON.
std::string tool_input(const ChatRequest& req, const std::string& name) {
  for (const auto& t : req.tools) {
    if (t.name != name || !t.input_schema.is_object()) continue;
    if (auto v = schema_instance(t.input_schema.as_object(), true); v && v->is_object()) return spaced_json(*v);
  }
  return "{}";
}

class MockRun final : public EngineRun, public std::enable_shared_from_this<MockRun> {
 public:
  MockRun(const asio::any_io_executor& ex, std::chrono::milliseconds delay) : timer_(ex), delay_(delay) {}

  void cancel() override {
    if (cancelled_.exchange(true)) return;
    asio::post(timer_.get_executor(), [self = shared_from_this()] { self->timer_.cancel(); });
  }

  asio::awaitable<void> run(std::shared_ptr<const ChatRequest> req, std::shared_ptr<EngineSink> sink);

 private:
  bool stop(const EngineSink& sink) const { return cancelled_.load(std::memory_order_relaxed) || sink.stopped(); }
  asio::awaitable<void> pause(std::size_t emitted);

  asio::steady_timer timer_;
  std::chrono::milliseconds delay_;
  std::atomic<bool> cancelled_{false};
};

asio::awaitable<void> MockRun::pause(std::size_t emitted) {
  if (delay_.count() > 0) {
    timer_.expires_after(delay_);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  } else if (emitted % 64 == 0) {
    co_await asio::post(timer_.get_executor(), asio::use_awaitable);  // let cancels in
  }
}

asio::awaitable<void> MockRun::run(std::shared_ptr<const ChatRequest> req, std::shared_ptr<EngineSink> sink) {
  std::string prompt;
  for (auto it = req->messages.rbegin(); it != req->messages.rend(); ++it) {
    if (it->role == "user") {
      prompt = message_text(*it);
      break;
    }
  }
  if (stop(*sink)) co_return;
  sink->begin(mock_input_tokens(*req));
  const auto tokens = mock_tokens(prompt);
  std::size_t emitted = 0;

  if (req->thinking) {
    std::string thought = "Thinking about:";
    int words = 0;
    for (auto t : tokens) {
      if (words++ == 5) break;
      std::string_view w = t;
      while (!w.empty() && is_space(w.back())) w.remove_suffix(1);
      while (!w.empty() && is_space(w.front())) w.remove_prefix(1);
      thought += ' ';
      thought += w;
    }
    for (auto t : mock_tokens(thought)) {
      if (emitted++ > 0) co_await pause(emitted);
      if (stop(*sink)) co_return;
      sink->thinking(t);
    }
  }

  if (req->tool_choice && (req->tool_choice->type == "any" || req->tool_choice->type == "tool") &&
      !req->tools.empty()) {
    std::string name = req->tool_choice->type == "tool" ? req->tool_choice->name : req->tools.front().name;
    if (emitted++ > 0) co_await pause(emitted);
    if (stop(*sink)) co_return;
    sink->tool_use(name);
    sink->tool_input(tool_input(*req, name));
    sink->finish(StopReason::tool_use, std::nullopt);
    co_return;
  }

  std::string reply = prompt;
  if (req->output_format) {  // checked at start (check_output_format), so an instance exists
    auto instance = schema_instance(req->output_format->schema);
    if (!instance) {
      sink->fail(instance.error());
      co_return;
    }
    reply = spaced_json(*instance);
  }
  StopMatcher matcher(req->stop_sequences);
  std::int64_t out = 0;
  for (auto t : mock_tokens(reply)) {
    if (req->max_tokens > 0 && out >= req->max_tokens) {
      sink->finish(StopReason::max_tokens, std::nullopt);
      co_return;
    }
    if (emitted++ > 0) co_await pause(emitted);
    if (stop(*sink)) co_return;
    auto step = matcher.feed(t);
    if (!step.emit.empty()) {
      sink->output_tokens(++out);
      sink->text(step.emit);
    }
    if (step.stop) {
      sink->finish(StopReason::stop_sequence, std::move(step.stop));
      co_return;
    }
  }
  if (auto rest = matcher.flush(); !rest.empty()) {
    sink->output_tokens(++out);
    sink->text(rest);
  }
  sink->finish(StopReason::end_turn, std::nullopt);
}

}  // namespace

std::vector<std::string_view> mock_tokens(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  const std::size_t n = text.size();
  std::size_t start = 0;
  while (i < n && is_space(text[i])) ++i;  // leading whitespace joins the first token
  while (i < n) {
    while (i < n && !is_space(text[i])) ++i;
    while (i < n && is_space(text[i])) ++i;
    out.push_back(text.substr(start, i - start));
    start = i;
  }
  if (out.empty() && n > 0) out.push_back(text);  // whitespace only
  return out;
}

std::int64_t mock_input_tokens(const ChatRequest& req) {
  std::int64_t n = count_words(req.system);
  for (const auto& m : req.messages) {
    for (const auto& b : m.content) {
      if (b.type == "text" || b.type == "thinking" || b.type == "tool_result") n += count_words(b.text);
    }
  }
  return n;
}

MockEngine::MockEngine(asio::any_io_executor engine_executor, MockOptions opts)
    : ex_(std::move(engine_executor)), opts_(opts) {}

std::shared_ptr<EngineRun> MockEngine::start(std::shared_ptr<const ChatRequest> req, std::shared_ptr<EngineSink> sink) {
  auto run = std::make_shared<MockRun>(ex_, opts_.token_delay);
  spawn_detached(
      ex_, [run, req, sink]() { return run->run(req, sink); }, "mock reply",
      [sink](const std::string& why) { sink->fail(make_error(Errc::internal, "the mock engine failed: " + why)); });
  return run;
}

Result<std::int64_t> MockEngine::count_tokens(const ChatRequest& req) { return mock_input_tokens(req); }

Status MockEngine::check_output_format(const OutputFormat& format) const {
  auto instance = schema_instance(format.schema);
  if (!instance) return instance.error();
  return Ok{};
}

}  // namespace spool
