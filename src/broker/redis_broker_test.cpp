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
  auto opened = co_await b.open(std::move(id), 0, ex);
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

// Runs `f` on a fresh io_context until it completes; background work is left behind.
template <class F>
void run(F f) {
  asio::io_context io;
  auto fut = asio::co_spawn(io, f(io.get_executor()), asio::use_future);
  while (fut.wait_for(0s) != std::future_status::ready) io.run_one();
  fut.get();
}

TEST(RedisBroker, AStreamWrittenOnOneInstanceReadsTheSameOnAnother) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBroker a(ex, options(redis));
    RedisBroker b(ex, options(redis));
    EXPECT_TRUE((co_await a.start()).ok());
    EXPECT_TRUE((co_await b.start()).ok());
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
    a.stop();
    b.stop();
  });
}

TEST(RedisBroker, CancelAndDeleteReachTheRunningInstance) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBroker a(ex, options(redis));
    RedisBroker b(ex, options(redis));
    std::vector<std::string> asked;
    a.on_remote_cancel([&](const std::string& id) { asked.push_back(id); });
    EXPECT_TRUE((co_await a.start()).ok());
    EXPECT_TRUE((co_await b.start()).ok());
    StreamSpec spec{"s2", "m", 1, false, ""};
    auto w = co_await a.create(spec);
    EXPECT_TRUE(w.ok());
    auto sent = co_await b.request_cancel("s2");
    EXPECT_TRUE(sent.ok() && *sent);
    for (int i = 0; i < 100 && asked.empty(); ++i) co_await pause(10ms);
    EXPECT_EQ(asked, std::vector<std::string>{"s2"});
    EXPECT_TRUE((co_await b.remove("s2")).ok());
    for (int i = 0; i < 100 && asked.size() < 2; ++i) co_await pause(10ms);
    EXPECT_EQ(asked.size(), 2u);
    EXPECT_EQ((co_await a.info("s2")).error().code, Errc::not_found);
    // the running instance's later writes do not bring the stream back
    const std::vector<NewEvent> late{{"message_start", "{}"}};
    (*w)->publish(late);
    co_await a.flush("s2");
    EXPECT_EQ((co_await b.info("s2")).error().code, Errc::not_found);
    EXPECT_EQ((co_await b.remove("s2")).error().code, Errc::not_found);
    a.stop();
    b.stop();
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
    RedisBroker a(ex, options(redis));
    RedisBroker b(ex, options(redis));
    std::vector<std::string> asked;
    a.on_remote_cancel([&](const std::string& id) { asked.push_back(id); });
    EXPECT_TRUE((co_await a.start()).ok());
    EXPECT_TRUE((co_await b.start()).ok());
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
    auto raw = RedisConnection::create(ex, *RedisEndpoint::parse(redis.url()), 2s);
    EXPECT_TRUE((co_await raw->connect()).ok());
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
    a.stop();
    b.stop();
  });
}

}  // namespace
}  // namespace spool
