#include "core/signal.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <thread>

namespace spool {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(Signal, ANotifyBeforeTheWaitIsKeptAndNotifiesCoalesce) {
  asio::io_context io;
  Signal s(io.get_executor());
  int woken = 0;
  bool second = true;
  s.notify();
  s.notify();  // coalesces with the first
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await s.wait();
        ++woken;
        second = co_await s.wait_for(20ms);
      },
      asio::detached);
  io.run();
  EXPECT_EQ(woken, 1);
  EXPECT_FALSE(second) << "two notifies before the wait wake it once";
}

TEST(Signal, ANotifyFromAnotherThreadWakesAWaiterBeforeItsTimeout) {
  asio::io_context io;
  Signal s(io.get_executor());
  bool notified = false;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { notified = co_await s.wait_for(10s); }, asio::detached);
  std::thread other([&] {
    std::this_thread::sleep_for(10ms);
    s.notify();
  });
  const auto t0 = std::chrono::steady_clock::now();
  io.run();
  other.join();
  EXPECT_TRUE(notified);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(Signal, CloseReleasesEveryWaitForGood) {
  asio::io_context io;
  Signal s(io.get_executor());
  int returned = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await s.wait();
        co_await s.wait();
        returned = 2;
      },
      asio::detached);
  s.close();
  io.run();
  EXPECT_EQ(returned, 2);
}

}  // namespace
}  // namespace spool
