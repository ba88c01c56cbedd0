#include "broker/redis_scripts.hpp"

#include "broker/redis_records.hpp"

#include "redis_server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>

namespace spool {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A call names its keys and arguments the same whatever its values: the script's locals are
// built from a default call's names.
template <class Call>
void expect_same_names(const Call& call) {
  const RedisKeys keys{"p:"};
  const ScriptArgs filled = call.args(keys);
  const ScriptArgs named = Call{}.args(RedisKeys{});
  EXPECT_EQ(filled.key_names(), named.key_names());
  EXPECT_EQ(filled.arg_names(), named.arg_names());
}

TEST(RedisScripts, ACallNamesItsKeysAndArgumentsWhateverItsValues) {
  const std::vector<std::pair<std::uint64_t, NewEvent>> events{{1, {"message_start", "{}"}}};
  expect_same_names(
      script::Append{"s", "i", 1, StreamStatus::error, "e", 1s, Usage{1, 2}, std::optional<int>(3), events});
  expect_same_names(script::Create{"s", "i", 1, "m", 2, true, "o"});
  expect_same_names(script::Lost{"s", 1, "{}", "lost", 1s});
  expect_same_names(script::Cancel{"s"});
  expect_same_names(script::Observers{"s", "i", 3});
  expect_same_names(script::Rebind{"k", "a", "b", 1s});
  expect_same_names(script::Abandon{"s", "o", "i"});
}

TEST(RedisScripts, TheTerminalStatusesComeFromIsTerminal) {
  const RedisScripts scripts(RedisKeys{"p:"});
  const std::string& text = scripts.text<script::Append>();
  EXPECT_EQ(text.rfind("local terminal = {['completed'] = true, ['cancelled'] = true, ['error'] = true, }\n", 0), 0u)
      << text;
  for (const std::string_view body : {script::Append::lua, script::Create::lua, script::Lost::lua, script::Cancel::lua,
                                      script::Observers::lua, script::Rebind::lua, script::Abandon::lua}) {
    for (auto st : kStatuses) {
      std::string quoted = "'";
      quoted.append(to_string(st)).append("'");
      EXPECT_EQ(body.find(quoted), std::string_view::npos) << body;
    }
  }
}

// Runs `f` on a fresh io_context until it completes.
template <class F>
void run(F f) {
  asio::io_context io;
  auto fut = asio::co_spawn(io, f(io.get_executor()), asio::use_future);
  while (fut.wait_for(0s) != std::future_status::ready) io.run_one();
  fut.get();
}

TEST(RedisScripts, AppendCreateAndAbandonOnARealRedis) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto conn = RedisConnection::create(ex, *RedisEndpoint::parse(redis.url()), 2s);
    EXPECT_TRUE((co_await conn->connect()).ok());
    RedisScripts scripts(RedisKeys{"t:"});
    EXPECT_TRUE((co_await scripts.load(*conn)).ok());
    EXPECT_TRUE(scripts.loaded());
    const std::vector<std::pair<std::uint64_t, NewEvent>> events{{1, {"message_start", "{}"}}};
    std::vector<RedisCommand> cmds;
    cmds.push_back(scripts.command(script::Create{"a", "i1", 1000, "m", 1, false, "o"}));
    cmds.push_back(scripts.command(script::Create{"a", "i1", 1000, "m", 1, false, "o"}));
    cmds.push_back(scripts.command(script::Create{"b", "i1", 1000, "m", 1, false, "o"}));
    cmds.push_back(scripts.command(
        script::Append{"b", "i1", 1001, std::nullopt, std::nullopt, 0s, std::nullopt, std::nullopt, events}));
    cmds.push_back(scripts.command(script::Abandon{"a", "o", "i1"}));
    cmds.push_back(scripts.command(script::Abandon{"b", "o", "i1"}));
    cmds.push_back(scripts.command(
        script::Append{"b", "i2", 1002, StreamStatus::completed, std::nullopt, 0s, std::nullopt, std::nullopt, {}}));
    cmds.push_back(scripts.command(
        script::Append{"b", "i1", 1002, StreamStatus::completed, std::nullopt, 0s, std::nullopt, std::nullopt, {}}));
    cmds.push_back(scripts.command(
        script::Append{"b", "i1", 1003, StreamStatus::error, std::nullopt, 0s, std::nullopt, std::nullopt, {}}));
    cmds.push_back(redis_args("HMGET", "t:{b}:meta", "status", "events", "completed_at"));
    cmds.push_back(redis_args("EXISTS", "t:{a}:meta"));
    auto r = co_await scripts.send(*conn, std::move(cmds));
    EXPECT_TRUE(r.ok());
    const std::vector<std::int64_t> expected{1, 0, 1, 1, 1, 0, -1, 1, -2};
    for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ((*r)[i].integer, expected[i]) << i;
    EXPECT_EQ((*r)[9].elements[0].str, "completed");
    EXPECT_EQ((*r)[9].elements[1].str, "1");
    EXPECT_EQ((*r)[9].elements[2].str, "1002");
    EXPECT_EQ((*r)[10].integer, 0);
  });
}

TEST(RedisScripts, SendLoadsTheScriptsAgainAfterRedisForgotThem) {
  testing::RedisServer redis;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto conn = RedisConnection::create(ex, *RedisEndpoint::parse(redis.url()), 2s);
    EXPECT_TRUE((co_await conn->connect()).ok());
    RedisScripts scripts(RedisKeys{"t:"});
    EXPECT_TRUE((co_await scripts.load(*conn)).ok());
    auto flush = redis_args("SCRIPT", "FLUSH");
    EXPECT_TRUE((co_await conn->command(std::move(flush))).ok());
    std::vector<RedisCommand> cmds;
    cmds.push_back(scripts.command(script::Cancel{"gone"}));
    auto r = co_await scripts.send(*conn, std::move(cmds));
    EXPECT_TRUE(r.ok());
    EXPECT_FALSE(r->front().is_error()) << r->front().str;
    EXPECT_EQ(r->front().integer, 0);
  });
}

}  // namespace
}  // namespace spool
