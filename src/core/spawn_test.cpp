#include "core/spawn.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include <stdexcept>

namespace spool {
namespace {

namespace asio = boost::asio;

asio::awaitable<void> throws() {
  co_await asio::this_coro::executor;
  throw std::out_of_range("value 1e400 is out of range");
}

asio::awaitable<int> returns() { co_return 7; }

TEST(SpawnDetached, AnEscapedExceptionReachesOnEscapeOnce) {
  asio::io_context io;
  std::vector<std::string> escaped;
  spawn_detached(io.get_executor(), throws(), "test task", [&](const std::string& why) { escaped.push_back(why); });
  spawn_detached(io.get_executor(), returns(), "quiet task", [&](const std::string& why) { escaped.push_back(why); });
  io.run();
  ASSERT_EQ(escaped.size(), 1u);
  EXPECT_EQ(escaped[0], "value 1e400 is out of range");
}

TEST(SpawnDetached, DescribeNamesWhatWasThrown) {
  EXPECT_EQ(describe(std::make_exception_ptr(std::runtime_error("boom"))), "boom");
  EXPECT_EQ(describe(std::make_exception_ptr(42)), "unknown exception");
}

}  // namespace
}  // namespace spool
