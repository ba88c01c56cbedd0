#include "broker/redis_connection.hpp"

#include "redis_server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <memory>
#include <optional>

namespace spool {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Runs `f` (a coroutine factory) on a fresh io_context and returns its result.
template <class F>
auto run(F f) {
  asio::io_context io;
  auto fut = asio::co_spawn(io, f(io.get_executor()), asio::use_future);
  io.run();
  return fut.get();
}

// Starts `a` now, concurrently; the returned slot is filled when it completes.
template <class T>
std::shared_ptr<std::optional<T>> start(const asio::any_io_executor& ex, asio::awaitable<T> a) {
  auto slot = std::make_shared<std::optional<T>>();
  asio::co_spawn(ex, std::move(a), [slot](const std::exception_ptr&, T v) { slot->emplace(std::move(v)); });
  return slot;
}

// Waits (at most 5 s) until `slot` is filled and returns its value.
template <class T>
asio::awaitable<T> finish(std::shared_ptr<std::optional<T>> slot) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  for (int i = 0; i < 1000 && !slot->has_value(); ++i) {
    t.expires_after(std::chrono::milliseconds(5));
    co_await t.async_wait(asio::use_awaitable);
  }
  EXPECT_TRUE(slot->has_value());
  co_return std::move(**slot);
}

RedisEndpoint endpoint_of(const testing::RedisServer& r) {
  auto ep = RedisEndpoint::parse(r.url());
  EXPECT_TRUE(ep.ok());
  return *ep;
}

TEST(RedisEndpoint, ParsesUrls) {
  auto a = RedisEndpoint::parse("redis://:secret@redis.example:6380/3");
  ASSERT_TRUE(a.ok()) << a.error().explanation;
  EXPECT_EQ(a->host, "redis.example");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->password, "secret");
  EXPECT_EQ(a->username, "");
  EXPECT_EQ(a->db, 3);
  EXPECT_EQ(a->where(), "redis.example:6380");
  auto b = RedisEndpoint::parse("redis://alice:pw@127.0.0.1");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->username, "alice");
  EXPECT_EQ(b->port, 6379);
  EXPECT_EQ(b->db, 0);
  for (const char* bad : {"http://x", "rediss://x:1", "redis://x:0", "redis://x:99999", "redis://x/abc", "nope"}) {
    auto r = RedisEndpoint::parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().explanation.find(bad), std::string::npos) << r.error().explanation;
  }
}

TEST(RedisConnection, CommandsArePipelinedAndAnsweredInOrder) {
  testing::RedisServer redis;
  auto out = run([&](asio::any_io_executor ex) -> asio::awaitable<std::vector<std::int64_t>> {
    auto c = RedisConnection::create(ex, endpoint_of(redis), 2s);
    EXPECT_TRUE((co_await c->connect()).ok());
    auto set = co_await c->command(redis_args("SET", "k", std::string("a\0b", 3)));
    EXPECT_TRUE(set.ok() && set->type == RedisValue::Type::status && set->str == "OK");
    auto get = co_await c->command(redis_args("GET", "k"));
    EXPECT_EQ(get->str, std::string("a\0b", 3));  // binary-safe
    auto missing = co_await c->command(redis_args("GET", "nope"));
    EXPECT_TRUE(missing->is_nil());
    auto err = co_await c->command(redis_args("INCR", "k"));
    EXPECT_TRUE(err.ok() && err->is_error()) << "a Redis error is a reply, not a failure";
    std::vector<std::vector<std::string>> many(500, redis_args("INCR", "n"));
    auto replies = co_await c->pipeline(std::move(many));
    std::vector<std::int64_t> got;
    for (auto& r : *replies) got.push_back(r.integer);
    c->close();
    co_return got;
  });
  ASSERT_EQ(out.size(), 500u);
  for (std::size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], static_cast<std::int64_t>(i + 1));
}

TEST(RedisConnection, AuthAndDatabaseFromTheUrl) {
  testing::RedisServer redis({"--requirepass", "pw"});
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto ep = endpoint_of(redis);
    auto anon = RedisConnection::create(ex, ep, 2s);
    EXPECT_TRUE((co_await anon->connect()).ok());  // no AUTH sent: commands are refused
    auto refused = co_await anon->command(redis_args("GET", "x"));
    EXPECT_TRUE(refused->is_error());
    EXPECT_NE(refused->str.find("NOAUTH"), std::string::npos);
    anon->close();

    ep.password = "wrong";
    auto bad = RedisConnection::create(ex, ep, 2s);
    auto st = co_await bad->connect();
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, Errc::broker_unavailable);
    EXPECT_NE(st.error().explanation.find(redis.url().substr(8)), std::string::npos) << st.error().explanation;
    EXPECT_FALSE(bad->connected());

    ep.password = "pw";
    ep.db = 2;
    auto good = RedisConnection::create(ex, ep, 2s);
    EXPECT_TRUE((co_await good->connect()).ok());
    co_await good->command(redis_args("SET", "where", "db2"));
    auto db = co_await good->command(redis_args("CLIENT", "INFO"));
    EXPECT_NE(db->str.find("db=2"), std::string::npos) << db->str;
    good->close();
  });
}

TEST(RedisConnection, RefusedLostAndReconnected) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisEndpoint nowhere = endpoint_of(redis);
    nowhere.port = static_cast<std::uint16_t>(redis.port() == 1 ? 2 : 1);
    auto refused = RedisConnection::create(ex, nowhere, 2s);
    auto st = co_await refused->connect();
    EXPECT_EQ(st.error().code, Errc::broker_unavailable);
    EXPECT_NE(st.error().explanation.find("127.0.0.1:" + std::to_string(nowhere.port)), std::string::npos);
    auto early = co_await refused->command(redis_args("PING"));
    EXPECT_EQ(early.error().code, Errc::broker_unavailable);

    auto c = RedisConnection::create(ex, endpoint_of(redis), 2s);
    int lost = 0;
    c->set_lost_handler([&](const std::string&) { ++lost; });
    EXPECT_TRUE((co_await c->connect()).ok());
    auto blocked = start(ex, c->command(redis_args("BLPOP", "never", "0")));  // in flight when the server dies
    asio::steady_timer t(ex);
    t.expires_after(50ms);
    co_await t.async_wait(asio::use_awaitable);
    redis.kill();
    auto r = co_await finish(blocked);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::broker_unavailable);
    EXPECT_EQ(lost, 1);
    EXPECT_FALSE(c->connected());
    EXPECT_FALSE((co_await c->command(redis_args("PING"))).ok());
    redis.restart();
    EXPECT_TRUE((co_await c->connect()).ok());
    auto pong = co_await c->command(redis_args("PING"));
    EXPECT_EQ(pong->str, "PONG");
    c->close();
  });
}

TEST(RedisConnection, PushMessagesAndABlockedReaderBesideAWriter) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto sub = RedisConnection::create(ex, endpoint_of(redis), 2s);
    std::vector<std::string> got;
    sub->set_push_handler([&](RedisValue v) { got.push_back(v.elements[2].str); });
    EXPECT_TRUE((co_await sub->connect()).ok());
    auto ack = co_await sub->command(redis_args("SUBSCRIBE", "ch"));
    EXPECT_EQ(ack->elements[0].str, "subscribe");

    auto reader = RedisConnection::create(ex, endpoint_of(redis), 2s);
    auto writer = RedisConnection::create(ex, endpoint_of(redis), 2s);
    EXPECT_TRUE((co_await reader->connect()).ok());
    EXPECT_TRUE((co_await writer->connect()).ok());
    auto read = start(ex, reader->command(redis_args("XREAD", "BLOCK", "5000", "STREAMS", "s", "0-0")));
    asio::steady_timer t(ex);
    t.expires_after(20ms);
    co_await t.async_wait(asio::use_awaitable);
    co_await writer->command(redis_args("XADD", "s", "1-0", "type", "ping", "data", "{}"));
    co_await writer->command(redis_args("PUBLISH", "ch", "hello"));
    auto entries = co_await finish(read);
    EXPECT_TRUE(entries.ok());
    if (!entries.ok()) co_return;
    EXPECT_EQ(entries->elements.at(0).elements.at(1).elements.at(0).elements.at(0).str, "1-0");
    t.expires_after(50ms);
    co_await t.async_wait(asio::use_awaitable);
    EXPECT_EQ(got, std::vector<std::string>{"hello"});
    for (auto* c : {sub.get(), reader.get(), writer.get()}) c->close();
  });
}

}  // namespace
}  // namespace spool

namespace spool {
namespace {

// A stand-in for a Redis that is loading its data: every command is answered -LOADING.
asio::awaitable<void> loading_redis(asio::ip::tcp::acceptor& acceptor) {
  auto sock = co_await acceptor.async_accept(asio::use_awaitable);
  std::array<char, 4096> buf{};
  for (;;) {
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    static constexpr std::string_view kLoading = "-LOADING Redis is loading the dataset in memory\r\n";
    co_await asio::async_write(sock, asio::buffer(kLoading), asio::use_awaitable);
  }
}

TEST(RedisConnection, ALoadingRedisFailsTheCommandInsteadOfAnsweringIt) {
  auto failure = run([&](asio::any_io_executor ex) -> asio::awaitable<Error> {
    asio::ip::tcp::acceptor acceptor(ex, {asio::ip::make_address("127.0.0.1"), 0});
    RedisEndpoint ep;
    ep.port = acceptor.local_endpoint().port();
    asio::co_spawn(ex, loading_redis(acceptor), asio::detached);
    auto c = RedisConnection::create(ex, ep, 2s);
    EXPECT_TRUE((co_await c->connect()).ok());
    auto args = redis_args("EXISTS", "k");
    auto exists = co_await c->command(std::move(args));
    EXPECT_FALSE(exists.ok()) << "an error reply read as 0 would say the key is absent";
    c->close();
    co_return exists.error();
  });
  EXPECT_EQ(failure.code, Errc::broker_unavailable);
  EXPECT_NE(failure.explanation.find("LOADING"), std::string::npos) << failure.explanation;
}

}  // namespace
}  // namespace spool
