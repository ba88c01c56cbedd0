#include "broker/redis_broker.hpp"

#include "redis_server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace spool {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

RedisBrokerOptions options(const testing::RedisServer& redis, std::chrono::milliseconds lease = 10s) {
  RedisBrokerOptions o;
  o.endpoint = *RedisEndpoint::parse(redis.url());
  o.prefix = "test:";
  o.lease = lease;
  return o;
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::use_awaitable);
}

// Everything a cursor reads until the stream ends (or `limit` passes), as one string.
asio::awaitable<std::string> read_all(Broker& b, std::string id, std::chrono::milliseconds limit = 5s) {
  auto ex = co_await asio::this_coro::executor;
  auto opened = co_await b.open(std::move(id), 0, 0, ex);
  EXPECT_TRUE(opened.ok());
  if (!opened.ok()) co_return std::string();
  Cursor& c = **opened;
  std::string out;
  asio::steady_timer deadline(ex);
  deadline.expires_after(limit);
  deadline.async_wait([&c](boost::system::error_code ec) {
    if (!ec) c.abort();
  });
  for (;;) {
    ReadChunk chunk = co_await c.next();
    if (chunk.kind != ReadChunk::Kind::data) break;
    for (const auto& buf : chunk.buffers) out.append(static_cast<const char*>(buf.data()), buf.size());
  }
  deadline.cancel();
  co_await pause(1ms);  // the cancelled deadline's handler runs before `c` goes
  co_return out;
}

// Two brokers on one Redis, as two instances; started by start(), stopped when destroyed.
struct TwoInstances {
  TwoInstances(const asio::any_io_executor& ex, const testing::RedisServer& redis)
      : a(ex, options(redis)), b(ex, options(redis)) {}
  TwoInstances(const TwoInstances&) = delete;
  TwoInstances& operator=(const TwoInstances&) = delete;
  ~TwoInstances() {
    a.stop();
    b.stop();
  }
  asio::awaitable<void> start() {
    EXPECT_TRUE((co_await a.start()).ok());
    EXPECT_TRUE((co_await b.start()).ok());
  }
  RedisBroker a, b;
};

// A raw connection to `redis` for arranging what a test needs.
asio::awaitable<std::shared_ptr<RedisConnection>> raw_connection(const testing::RedisServer& redis) {
  auto raw = RedisConnection::create(co_await asio::this_coro::executor, *RedisEndpoint::parse(redis.url()), 2s);
  EXPECT_TRUE((co_await raw->connect()).ok());
  co_return raw;
}

// Runs `f` on a fresh io_context until it completes, then what its brokers' shutdown posted (as
// the server's threads do after stop()), so their loops end instead of holding them forever.
template <class F>
void run(F f) {
  asio::io_context io;
  auto fut = asio::co_spawn(io, f(io.get_executor()), asio::use_future);
  while (fut.wait_for(0s) != std::future_status::ready) io.run_one();
  io.restart();
  while (io.poll() > 0) {
  }
  fut.get();
}

TEST(RedisBroker, AStreamWrittenOnOneInstanceReadsTheSameOnAnother) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    TwoInstances two(ex, redis);
    auto& [a, b] = two;
    co_await two.start();
    StreamSpec spec{"s1", "m", 1, false, "owner-1"};
    auto w = co_await a.create(spec);
    EXPECT_TRUE(w.ok());
    StreamSpec again{"s1", "m", 1, false, ""};
    auto dup = co_await b.create(again);
    EXPECT_FALSE(dup.ok());
    EXPECT_EQ(dup.error().code, Errc::invalid_request);

    const std::vector<NewEvent> head{{"message_start", R"({"type":"message_start"})"},
                                     {"content_block_delta", R"({"type":"content_block_delta","x":1})"}};
    (*w)->publish(head, StreamStatus::processing);
    (*w)->set_usage(Usage{3, 1});
    const std::vector<NewEvent> tail{{"message_stop", R"({"type":"message_stop"})"}};
    (*w)->publish(tail, StreamStatus::completed);
    EXPECT_TRUE((co_await a.flush("s1")).ok());

    auto info = co_await b.info("s1");
    EXPECT_TRUE(info.ok());
    EXPECT_EQ(info->status, StreamStatus::completed);
    EXPECT_EQ(info->events, 3u);
    EXPECT_EQ(info->usage.input_tokens, 3);
    EXPECT_EQ(info->model, "m");
    EXPECT_TRUE(info->completed_at.has_value());
    auto owner = co_await b.owner("s1");
    EXPECT_EQ(*owner, "owner-1");

    const std::string on_a = co_await read_all(a, "s1");
    const std::string on_b = co_await read_all(b, "s1");
    EXPECT_EQ(on_a, on_b);
    EXPECT_NE(on_b.find("event: message_stop\ndata: {\"type\":\"message_stop\"}\nid: 3\n\n"), std::string::npos)
        << on_b;

    auto missing = co_await b.info("nope");
    EXPECT_EQ(missing.error().code, Errc::not_found);
  });
}

TEST(RedisBroker, CancelAndDeleteReachTheRunningInstance) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    TwoInstances two(ex, redis);
    auto& [a, b] = two;
    std::vector<std::string> asked;
    a.on_remote_cancel([&](const std::string& id) { asked.push_back(id); });
    co_await two.start();
    StreamSpec spec{"s2", "m", 1, false, ""};
    auto w = co_await a.create(spec);
    EXPECT_TRUE(w.ok());
    auto sent = co_await b.request_cancel("s2");
    EXPECT_TRUE(sent.ok() && *sent);
    for (int i = 0; i < 100 && asked.empty(); ++i) co_await pause(10ms);
    EXPECT_EQ(asked, std::vector<std::string>{"s2"});
    EXPECT_TRUE((co_await b.remove("s2", Removal::tombstone)).ok());
    for (int i = 0; i < 100 && asked.size() < 2; ++i) co_await pause(10ms);
    EXPECT_EQ(asked.size(), 2u);
    EXPECT_EQ((co_await a.info("s2")).error().code, Errc::not_found);
    // the running instance's later writes do not bring the stream back
    const std::vector<NewEvent> late{{"message_start", "{}"}};
    (*w)->publish(late);
    co_await a.flush("s2");
    EXPECT_EQ((co_await b.info("s2")).error().code, Errc::not_found);
    EXPECT_EQ((co_await b.remove("s2", Removal::tombstone)).error().code, Errc::not_found);
    EXPECT_EQ((co_await b.request_cancel("s2")).error().code, Errc::not_found);
  });
}

TEST(RedisBroker, ALostInstancesJobEndsWithAnErrorEvent) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto a = std::make_unique<RedisBroker>(ex, options(redis, 150ms));
    RedisBroker b(ex, options(redis, 150ms));
    EXPECT_TRUE((co_await a->start()).ok());
    EXPECT_TRUE((co_await b.start()).ok());
    StreamSpec spec{"s3", "m", 1, false, ""};
    auto w = co_await a->create(spec);
    const std::vector<NewEvent> head{{"message_start", R"({"type":"message_start"})"}};
    (*w)->publish(head, StreamStatus::processing);
    EXPECT_TRUE((co_await a->flush("s3")).ok());
    a->stop();  // no more lease renewals: as if the process died
    const std::string log = co_await read_all(b, "s3", 3s);
    EXPECT_NE(log.find("event: error\n"), std::string::npos) << log;
    EXPECT_NE(log.find("instance lost"), std::string::npos) << log;
    auto info = co_await b.info("s3");
    EXPECT_EQ(info->status, StreamStatus::error);
    EXPECT_EQ(info->error_message.value_or(""), "instance lost");
    EXPECT_EQ(info->events, 2u);
    b.stop();
  });
}

TEST(RedisBroker, AStreamWhoseRecordVanishesEndsEverywhere) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    TwoInstances two(ex, redis);
    auto& [a, b] = two;
    std::vector<std::string> asked;
    a.on_remote_cancel([&](const std::string& id) { asked.push_back(id); });
    co_await two.start();
    StreamSpec spec{"s4", "m", 1, false, ""};
    auto w = co_await a.create(spec);
    const std::vector<NewEvent> head{{"message_start", R"({"type":"message_start"})"}};
    (*w)->publish(head, StreamStatus::processing);
    EXPECT_TRUE((co_await a.flush("s4")).ok());
    // an observer on B follows the stream...
    auto log = std::make_shared<std::optional<std::string>>();
    asio::co_spawn(ex, read_all(b, "s4", 5s),
                   [log](const std::exception_ptr&, std::string l) { log->emplace(std::move(l)); });
    co_await pause(100ms);
    // ...when Redis loses its data (restarted without persistence): the record is gone
    auto raw = co_await raw_connection(redis);
    auto flushall = redis_args("FLUSHALL");
    co_await raw->command(std::move(flushall));
    raw->close();
    // the observer on B is released (the mirror sweep notices within about a second), not
    // left waiting until the 5 s limit
    for (int i = 0; i < 300 && !log->has_value(); ++i) co_await pause(10ms);
    EXPECT_TRUE(log->has_value());
    EXPECT_NE(log->value_or("").find("event: message_start"), std::string::npos);
    // the next write on A finds the stream gone and stops the job there
    const std::vector<NewEvent> more{{"content_block_start", "{}"}};
    (*w)->publish(more);
    for (int i = 0; i < 100 && asked.empty(); ++i) co_await pause(10ms);
    EXPECT_EQ(asked, std::vector<std::string>{"s4"});
  });
}

TEST(RedisBroker, ACancelWhoseMessageWasMissedIsFoundInTheRecord) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBroker a(ex, options(redis, 300ms));
    std::vector<std::string> asked;
    a.on_remote_cancel([&](const std::string& id) { asked.push_back(id); });
    EXPECT_TRUE((co_await a.start()).ok());
    StreamSpec spec{"s5", "m", 1, false, ""};
    auto w = co_await a.create(spec);
    EXPECT_TRUE(w.ok());
    // the request is stored, but its pub/sub message never reaches A (as while A's subscriber
    // reconnects): A finds it in the stream's record within a lease period
    auto raw = co_await raw_connection(redis);
    auto stored = redis_args("HSET", "test:{s5}:meta", "cancel_requested", "1");
    co_await raw->command(std::move(stored));
    for (int i = 0; i < 100 && asked.empty(); ++i) co_await pause(10ms);
    EXPECT_EQ(asked, std::vector<std::string>{"s5"});
    raw->close();
    a.stop();
  });
}

TEST(RedisBroker, ObserversAreCountedOverEveryLiveInstance) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    TwoInstances two(ex, redis);
    auto& [a, b] = two;
    co_await two.start();
    RedisBroker c(ex, options(redis, 200ms));
    EXPECT_TRUE((co_await c.start()).ok());
    StreamSpec spec{"s6", "m", 1, false, ""};
    auto w = co_await a.create(spec);
    const std::vector<NewEvent> head{{"message_start", R"({"type":"message_start"})"}};
    (*w)->publish(head, StreamStatus::processing);
    EXPECT_TRUE((co_await a.flush("s6")).ok());
    // wait until `broker` reports `n` observers of s6 (the counts travel through Redis)
    auto observers_seen = [](RedisBroker& broker, int n) -> asio::awaitable<bool> {
      for (int i = 0; i < 200; ++i) {
        auto info = co_await broker.info("s6");
        if (info && info->observers == n) co_return true;
        co_await pause(10ms);
      }
      co_return false;
    };
    auto on_b1 = co_await b.open("s6", 0, 0, ex);
    auto on_b2 = co_await b.open("s6", 0, 0, ex);
    auto on_c = co_await c.open("s6", 0, 0, ex);
    EXPECT_TRUE(on_b1.ok() && on_b2.ok() && on_c.ok());
    EXPECT_TRUE(co_await observers_seen(a, 3));
    EXPECT_TRUE(co_await observers_seen(b, 3));
    on_b2->reset();
    EXPECT_TRUE(co_await observers_seen(a, 2));
    // C stops renewing its lease (as if killed): its observer no longer counts
    c.stop();
    EXPECT_TRUE(co_await observers_seen(a, 1));
    on_b1->reset();
    EXPECT_TRUE(co_await observers_seen(a, 0));
    on_c->reset();
  });
}

TEST(RedisBroker, AnIdempotencyKeyBindsOneStreamOnEveryInstance) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    TwoInstances two(ex, redis);
    auto& [a, b] = two;
    co_await two.start();
    StreamSpec first{"k1", "m", 1, false, ""};
    StreamSpec second{"k2", "m", 1, false, ""};
    EXPECT_TRUE((co_await a.create(first)).ok());
    EXPECT_TRUE((co_await b.create(second)).ok());
    auto none = co_await b.find_key("owner\nkey");
    EXPECT_TRUE(none.ok() && !*none);
    KeyedJob on_a{"k1", "111"};
    auto claimed = co_await a.claim_key("owner\nkey", on_a);
    EXPECT_TRUE(claimed.ok() && !*claimed);
    // B sees A's binding, and cannot take the key while k1 exists
    auto seen = co_await b.find_key("owner\nkey");
    EXPECT_TRUE(seen.ok() && *seen && (*seen)->id == "k1" && (*seen)->digest == "111");
    KeyedJob on_b{"k2", "222"};
    auto lost = co_await b.claim_key("owner\nkey", on_b);
    EXPECT_TRUE(lost.ok() && *lost && (*lost)->id == "k1");
    // another owner's key of the same name is another key
    auto other = co_await b.claim_key("someone\nkey", on_b);
    EXPECT_TRUE(other.ok() && !*other);
    // once k1 is deleted, the key is free again
    EXPECT_TRUE((co_await a.remove("k1", Removal::tombstone)).ok());
    auto freed = co_await b.find_key("owner\nkey");
    EXPECT_TRUE(freed.ok() && !*freed);
    auto rebound = co_await b.claim_key("owner\nkey", on_b);
    EXPECT_TRUE(rebound.ok() && !*rebound);
    auto now_b = co_await a.find_key("owner\nkey");
    EXPECT_TRUE(now_b.ok() && *now_b && (*now_b)->id == "k2");
  });
}

// An id deleted on one instance and created again on another is its second incarnation everywhere:
// its frames carry it and a cursor of the first is refused; an expired one leaves its tombstone too.
TEST(RedisBroker, AnIdCreatedAgainIsItsNextIncarnationOnEveryInstance) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    TwoInstances two(ex, redis);
    auto& [a, b] = two;
    co_await two.start();
    const std::vector<NewEvent> ev{{"message_stop", R"({"type":"message_stop"})"}};
    StreamSpec spec{"s7", "m", 1, false, ""};
    auto first = co_await a.create(spec);
    EXPECT_TRUE(first.ok());
    (*first)->publish(ev, StreamStatus::completed);
    EXPECT_TRUE((co_await a.flush("s7")).ok());
    EXPECT_EQ(co_await read_all(b, "s7"), "event: message_stop\ndata: {\"type\":\"message_stop\"}\nid: 1\n\n");
    EXPECT_TRUE((co_await b.remove("s7", Removal::tombstone)).ok());
    auto second = co_await b.create(spec);
    EXPECT_TRUE(second.ok());
    (*second)->publish(ev, StreamStatus::completed);
    EXPECT_TRUE((co_await b.flush("s7")).ok());
    EXPECT_EQ((co_await a.info("s7"))->incarnation, 2u);
    EXPECT_EQ(co_await read_all(a, "s7"), "event: message_stop\ndata: {\"type\":\"message_stop\"}\nid: 1.2\n\n");
    EXPECT_EQ(co_await read_all(b, "s7"), co_await read_all(a, "s7"));
    for (Broker* on : {static_cast<Broker*>(&a), static_cast<Broker*>(&b)}) {
      auto old = co_await on->open("s7", 1, 1, ex);
      EXPECT_EQ(old.ok() ? Errc::internal : old.error().code, Errc::conflict);
      auto current = co_await on->open("s7", 1, 2, ex);
      EXPECT_TRUE(current.ok());
    }
    // A removal that forgets leaves no tombstone: the id starts over.
    EXPECT_TRUE((co_await a.remove("s7", Removal::forget)).ok());
    auto fresh = co_await a.create(spec);
    EXPECT_TRUE(fresh.ok());
    EXPECT_EQ((co_await b.info("s7"))->incarnation, 1u);
  });
}

TEST(RedisBroker, AnExpiredStreamLeavesItsTombstone) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto opts = options(redis);
    opts.stream_expiration = 1s;
    RedisBroker a(ex, opts);
    EXPECT_TRUE((co_await a.start()).ok());
    StreamSpec spec{"s8", "m", 1, false, ""};
    auto w = co_await a.create(spec);
    EXPECT_TRUE(w.ok());
    (*w)->set_status(StreamStatus::completed);
    EXPECT_TRUE((co_await a.flush("s8")).ok());
    bool gone = false;
    for (int i = 0; i < 400 && !gone; ++i) {  // 4 s at most
      gone = !(co_await a.info("s8")).ok();
      if (!gone) co_await pause(10ms);
    }
    EXPECT_TRUE(gone);
    auto again = co_await a.create(spec);
    EXPECT_TRUE(again.ok());
    EXPECT_EQ((co_await a.info("s8"))->incarnation, 2u);
    a.stop();
  });
}

}  // namespace
}  // namespace spool
