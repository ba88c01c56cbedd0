#include "broker/memory_broker.hpp"

#include "jobs/job.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>

namespace spool {
namespace {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// Runs `aw` to completion on `ctx`.
template <class T>
T run(asio::io_context& ctx, asio::awaitable<T> aw) {
  auto fut = asio::co_spawn(ctx, std::move(aw), asio::use_future);
  ctx.restart();
  while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) ctx.run_one();
  return fut.get();
}

std::string text(const ReadChunk& c) {
  std::string s;
  for (const auto& b : c.buffers) s.append(static_cast<const char*>(b.data()), b.size());
  return s;
}

std::vector<std::string> event_types(const std::string& sse) {
  std::vector<std::string> out;
  std::size_t p = 0;
  while ((p = sse.find("event: ", p)) != std::string::npos) {
    p += 7;
    out.push_back(sse.substr(p, sse.find('\n', p) - p));
  }
  return out;
}

struct BrokerTest : ::testing::Test {
  asio::io_context ctx;
  MemoryBroker broker{ctx.get_executor(), MemoryBrokerOptions{std::chrono::seconds(10), std::chrono::hours(1)}};
  ~BrokerTest() override { broker.stop(); }

  std::shared_ptr<StreamWriter> create(const std::string& id) {
    auto w = run(ctx, broker.create(StreamSpec{id, "m", 1, false, ""}));
    EXPECT_TRUE(w.ok());
    return w.value();
  }
  std::unique_ptr<Cursor> open(const std::string& id, std::uint64_t after = 0) {
    auto c = run(ctx, broker.open(id, after, 0, ctx.get_executor()));
    EXPECT_TRUE(c.ok());
    return std::move(c.value());
  }
  // Reads once; interrupts the wait after `wait` (what a ping does).
  ReadChunk next(Cursor& c, std::chrono::milliseconds wait = std::chrono::milliseconds(2000)) {
    asio::steady_timer t(ctx, wait);
    t.async_wait([&c](boost::system::error_code ec) {
      if (!ec) c.interrupt();
    });
    ReadChunk r = run(ctx, c.next());
    t.cancel();
    ctx.restart();
    ctx.poll();
    last_text = text(r);
    return r;
  }
  std::string last_text;  // the bytes of the last next(), copied before the cursor moves on
};

TEST_F(BrokerTest, DuplicateIdRejected) {
  create("a");
  auto again = run(ctx, broker.create(StreamSpec{"a", "m", 1, false, ""}));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().explanation, "Stream with this message_id already exists");
}

TEST_F(BrokerTest, UnknownIdIsNotFound) {
  EXPECT_EQ(run(ctx, broker.info("zz")).error().code, Errc::not_found);
  EXPECT_EQ(run(ctx, broker.open("zz", 0, 0, ctx.get_executor())).error().code, Errc::not_found);
  EXPECT_EQ(run(ctx, broker.remove("zz", Removal::tombstone)).error().code, Errc::not_found);
}

TEST_F(BrokerTest, CursorReplaysThenWaitsThenEnds) {
  auto w = create("s");
  w->append("a", "{}");
  w->append("b", "{}");
  auto c = open("s");
  auto first = next(*c);
  EXPECT_EQ(first.events, 2u);
  EXPECT_EQ(event_types(text(first)), (std::vector<std::string>{"a", "b"}));
  // nothing new: the deadline passes and an empty chunk means "ping"
  auto idle = next(*c, std::chrono::milliseconds(20));
  EXPECT_EQ(idle.kind, ReadChunk::Kind::interrupted);
  // a producer on another thread wakes the waiting cursor
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    w->append("c", "{}");
  });
  auto live = next(*c);
  producer.join();
  EXPECT_EQ(event_types(text(live)), (std::vector<std::string>{"c"}));
  w->set_status(StreamStatus::completed);
  EXPECT_TRUE(next(*c).kind == ReadChunk::Kind::end);
}

TEST_F(BrokerTest, ResumeAfterPositionAndExhaustion) {
  auto w = create("r");
  for (int i = 0; i < 5; ++i) w->append("e", "{}");
  auto c = open("r", 3);
  auto chunk = next(*c);
  EXPECT_EQ(chunk.events, 2u);
  EXPECT_NE(text(chunk).find("id: 4\n"), std::string::npos);
  EXPECT_EQ(text(chunk).find("id: 3\n"), std::string::npos);
  w->set_status(StreamStatus::completed);
  EXPECT_TRUE(open("r", 5)->exhausted_at_open());
  EXPECT_FALSE(open("r", 4)->exhausted_at_open());
}

TEST_F(BrokerTest, RemoveEndsCursorsAndFreesId) {
  auto w = create("d");
  auto c = open("d");
  std::thread remover([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    asio::io_context other;
    run(other, broker.remove("d", Removal::tombstone));
  });
  EXPECT_TRUE(next(*c).kind == ReadChunk::Kind::end);
  remover.join();
  EXPECT_EQ(run(ctx, broker.info("d")).error().code, Errc::not_found);
  create("d");
}

TEST_F(BrokerTest, ObserverCountFollowsCursors) {
  create("o");
  {
    auto c1 = open("o");
    auto c2 = open("o");
    EXPECT_EQ(run(ctx, broker.info("o"))->observers, 2);
  }
  EXPECT_EQ(run(ctx, broker.info("o"))->observers, 0);
}

TEST_F(BrokerTest, OnlyAnUnobservedStreamIsRemovedIfUnobserved) {
  create("watched");
  {
    auto c = open("watched");
    EXPECT_EQ(broker.observers_of("watched"), 1);
    EXPECT_FALSE(broker.remove_if_unobserved("watched"));
  }
  EXPECT_EQ(broker.observers_of("watched"), 0);
  EXPECT_TRUE(broker.remove_if_unobserved("watched"));
  EXPECT_FALSE(broker.remove_if_unobserved("watched"));
  EXPECT_EQ(run(ctx, broker.open("watched", 0, 0, ctx.get_executor())).error().code, Errc::not_found);
}

TEST_F(BrokerTest, ExpiryRemovesOnlyTerminalStreams) {
  auto done = create("done");
  auto active = create("active");
  done->set_status(StreamStatus::completed);
  const auto later = std::chrono::system_clock::now() + std::chrono::seconds(11);
  EXPECT_EQ(broker.sweep_expired(later), 1u);
  EXPECT_FALSE(run(ctx, broker.info("done")).ok());
  EXPECT_TRUE(run(ctx, broker.info("active")).ok());
}

TEST_F(BrokerTest, AnIdempotencyKeyLastsAsLongAsItsStream) {
  create("first");
  auto second = create("second");
  EXPECT_FALSE(run(ctx, broker.find_key("o\nk"))->has_value());
  EXPECT_FALSE(run(ctx, broker.claim_key("o\nk", KeyedJob{"first", "1"}))->has_value());
  auto held = run(ctx, broker.claim_key("o\nk", KeyedJob{"second", "2"}));
  EXPECT_TRUE(held->has_value() && (*held)->id == "first" && (*held)->digest == "1");
  EXPECT_EQ((*run(ctx, broker.find_key("o\nk")))->id, "first");
  // a key names an existing stream only
  EXPECT_EQ(run(ctx, broker.claim_key("o\nz", KeyedJob{"nope", "3"})).error().code, Errc::not_found);
  // deleting or expiring the stream frees the key
  EXPECT_TRUE(run(ctx, broker.remove("first", Removal::tombstone)).ok());
  EXPECT_FALSE(run(ctx, broker.find_key("o\nk"))->has_value());
  EXPECT_FALSE(run(ctx, broker.claim_key("o\nk", KeyedJob{"second", "2"}))->has_value());
  EXPECT_EQ((*run(ctx, broker.find_key("o\nk")))->id, "second");
  second->set_status(StreamStatus::completed);
  broker.sweep_expired(std::chrono::system_clock::now() + std::chrono::seconds(11));
  EXPECT_FALSE(run(ctx, broker.find_key("o\nk"))->has_value());
}

TEST_F(BrokerTest, TerminalStatusNeverChanges) {
  auto w = create("t");
  w->set_status(StreamStatus::cancelled);
  auto completed_at = run(ctx, broker.info("t"))->completed_at;
  w->set_status(StreamStatus::completed);
  w->set_status(StreamStatus::error, "x");
  auto info = run(ctx, broker.info("t")).value();
  EXPECT_EQ(info.status, StreamStatus::cancelled);
  EXPECT_EQ(info.completed_at, completed_at);
  EXPECT_FALSE(info.error_message.has_value());
}

// Job: engine output → events.
struct JobTest : BrokerTest {
  std::string log_of(const std::string& id) { return text(next(*open(id), std::chrono::milliseconds(1))); }
};

TEST_F(JobTest, CompletedSequence) {
  auto j = std::make_shared<Job>("j", "m", create("j"), JobOptions{}, nullptr);
  j->begin(3);
  j->thinking("hmm");
  j->text("a ");
  j->output_tokens(1);
  j->text("b");
  j->output_tokens(2);
  j->finish(StopReason::end_turn, std::nullopt);
  EXPECT_TRUE(j->terminal());
  EXPECT_EQ(event_types(log_of("j")),
            (std::vector<std::string>{"message_start", "content_block_start", "content_block_delta",
                                      "content_block_delta",  // the thinking block's signature_delta
                                      "content_block_stop", "content_block_start", "content_block_delta",
                                      "content_block_delta", "content_block_stop", "message_delta", "message_stop"}));
  auto info = run(ctx, broker.info("j")).value();
  EXPECT_EQ(info.status, StreamStatus::completed);
  EXPECT_EQ(info.usage.output_tokens, 2);
}

TEST_F(JobTest, CancelClosesOpenBlockAndIsFinal) {
  int terminal_calls = 0;
  auto j = std::make_shared<Job>("c", "m", create("c"), JobOptions{}, [&] { ++terminal_calls; });
  j->begin(1);
  j->text("x");
  j->cancel();
  j->text("late");  // ignored
  j->finish(StopReason::end_turn, std::nullopt);
  j->cancel();
  EXPECT_EQ(terminal_calls, 1);
  const std::string log = log_of("c");
  EXPECT_EQ(event_types(log), (std::vector<std::string>{"message_start", "content_block_start", "content_block_delta",
                                                        "content_block_stop", "message_delta", "message_stop"}));
  EXPECT_NE(log.find(R"("stop_reason":"cancelled")"), std::string::npos);
  EXPECT_EQ(log.find("late"), std::string::npos);
  EXPECT_EQ(run(ctx, broker.info("c"))->status, StreamStatus::cancelled);
}

TEST_F(JobTest, CancelBeforeStartStillWellFormed) {
  auto j = std::make_shared<Job>("e", "m", create("e"), JobOptions{}, nullptr);
  j->cancel();
  EXPECT_EQ(event_types(log_of("e")), (std::vector<std::string>{"message_start", "message_delta", "message_stop"}));
}

TEST_F(JobTest, FullLogEndsWithError) {
  auto j = std::make_shared<Job>("f", "m", create("f"), JobOptions{6, false}, nullptr);
  j->begin(1);
  for (int i = 0; i < 10; ++i) j->text("w ");
  EXPECT_TRUE(j->terminal());
  auto types = event_types(log_of("f"));
  EXPECT_LE(types.size(), 6u);
  EXPECT_EQ(types.back(), "error");
  auto info = run(ctx, broker.info("f")).value();
  EXPECT_EQ(info.status, StreamStatus::error);
  EXPECT_NE(info.error_message->find("maximum_stream_length"), std::string::npos);
}

TEST_F(JobTest, FoldedMessage) {
  auto j = std::make_shared<Job>("g", "m", create("g"), JobOptions{100, true}, nullptr);
  j->begin(2);
  j->tool_use("calc");
  j->tool_input(R"({"x":)");
  j->tool_input("1}");
  j->finish(StopReason::tool_use, std::nullopt);
  auto m = j->folded();
  EXPECT_EQ(m.at("stop_reason").as_string(), "tool_use");
  auto& block = m.at("content").as_array()[0].as_object();
  EXPECT_EQ(block.at("type").as_string(), "tool_use");
  EXPECT_EQ(block.at("input").at("x").as_int64(), 1);
}

TEST_F(JobTest, FailWritesErrorBodyWithRequestId) {
  auto j = std::make_shared<Job>("h", "m", create("h"), JobOptions{}, nullptr);
  j->begin(1);
  j->fail(make_error(Errc::upstream, "connection refused"));
  const std::string log = log_of("h");
  const auto data = log.substr(log.rfind("data: ") + 6);
  auto v = boost::json::parse(data.substr(0, data.find('\n')));
  EXPECT_EQ(v.at("request_id").as_string(), "h");
  EXPECT_EQ(v.at("error").at("type").as_string(), "api_error");
  EXPECT_EQ(v.at("detail").as_string(), "connection refused");
}

}  // namespace
}  // namespace spool

namespace spool {
namespace {

// A delete leaves a tombstone: the id's next stream is its second incarnation, whose frames carry
// it, and a cursor of the first is refused (the second's and the current one's are not).
TEST_F(BrokerTest, AnIdCreatedAgainIsItsNextIncarnation) {
  auto first = create("x");
  first->append("a", "{}");
  EXPECT_EQ(run(ctx, broker.info("x"))->incarnation, 1u);
  ASSERT_TRUE(run(ctx, broker.remove("x", Removal::tombstone)).ok());
  EXPECT_EQ(broker.tombstones(), 1u);
  auto second = create("x");
  EXPECT_EQ(broker.tombstones(), 0u) << "the create took it";
  EXPECT_EQ(run(ctx, broker.info("x"))->incarnation, 2u);
  second->append("a", "{}");
  second->append("b", "{}");
  auto c = open("x", 1);
  ASSERT_EQ(next(*c).kind, ReadChunk::Kind::data);
  EXPECT_EQ(last_text, "event: b\ndata: {}\nid: 2.2\n\n");
  auto old = run(ctx, broker.open("x", 1, 1, ctx.get_executor()));
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.error().code, Errc::conflict);
  EXPECT_EQ(old.error().explanation,
            "Last-Event-ID 1 belongs to incarnation 1 of stream x, which was deleted; the id now names incarnation 2 "
            "(resume it from the start, without Last-Event-ID)");
  EXPECT_TRUE(run(ctx, broker.open("x", 1, 2, ctx.get_executor())).ok());
  EXPECT_EQ(run(ctx, broker.open("x", 1, 3, ctx.get_executor())).error().code, Errc::conflict);
  EXPECT_TRUE(run(ctx, broker.open("x", 0, 1, ctx.get_executor())).ok()) << "position 0 names no event";
  // again: the third; expiry leaves a tombstone too
  second->set_status(StreamStatus::completed);
  ASSERT_EQ(broker.sweep_expired(std::chrono::system_clock::now() + std::chrono::seconds(11)), 1u);
  create("x");
  EXPECT_EQ(run(ctx, broker.info("x"))->incarnation, 3u);
  // a removal that forgets (a synchronous reply's internal stream) leaves nothing
  ASSERT_TRUE(run(ctx, broker.remove("x", Removal::forget)).ok());
  EXPECT_EQ(broker.tombstones(), 0u);
  create("x");
  EXPECT_EQ(run(ctx, broker.info("x"))->incarnation, 1u);
}

TEST(MemoryBrokerTombstones, TheSweepForgetsThemAfterTheirMemory) {
  asio::io_context ctx;
  MemoryBroker broker{ctx.get_executor(), MemoryBrokerOptions{.stream_expiration = std::chrono::seconds(0),
                                                              .sweep_interval = std::chrono::hours(1),
                                                              .incarnation_memory = std::chrono::seconds(5)}};
  ASSERT_TRUE(run(ctx, broker.create(StreamSpec{"y", "m", 1, false, ""})).ok());
  ASSERT_TRUE(run(ctx, broker.remove("y", Removal::tombstone)).ok());
  const auto now = std::chrono::system_clock::now();
  broker.sweep_expired(now + std::chrono::seconds(4));
  EXPECT_EQ(broker.tombstones(), 1u);
  broker.sweep_expired(now + std::chrono::seconds(6));
  EXPECT_EQ(broker.tombstones(), 0u);
  ASSERT_TRUE(run(ctx, broker.create(StreamSpec{"y", "m", 1, false, ""})).ok());
  EXPECT_EQ(run(ctx, broker.info("y"))->incarnation, 1u) << "forgotten: the id starts over";
  broker.stop();
}

}  // namespace
}  // namespace spool
