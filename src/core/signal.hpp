// A wake-up a coroutine can wait for: what the code used cancelled timers for, named.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>

#include <chrono>

namespace spool {

// One waiter, any number of notifiers on any thread. Notifies while nobody waits are kept as one
// (they coalesce), so a wait that starts after a notify returns at once.
class Signal {
 public:
  // Waits complete on `ex`.
  explicit Signal(const boost::asio::any_io_executor& ex);

  // Wakes the waiter (or the next one); thread-safe, never blocks.
  void notify();

  // Returns once notified (or closed).
  boost::asio::awaitable<void> wait();

  // Returns true once notified, false when `timeout` passed first.
  boost::asio::awaitable<bool> wait_for(std::chrono::milliseconds timeout);

  // Wakes the waiter for good: every wait from now on returns at once (shutdown).
  void close();

 private:
  boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> ch_;
};

}  // namespace spool
