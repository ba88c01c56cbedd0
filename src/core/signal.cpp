#include "core/signal.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace spool {
namespace asio = boost::asio;

Signal::Signal(const asio::any_io_executor& ex) : ch_(ex, 1) {}

void Signal::notify() { ch_.try_send(boost::system::error_code{}); }

asio::awaitable<void> Signal::wait() { co_await ch_.async_receive(asio::as_tuple(asio::use_awaitable)); }

asio::awaitable<bool> Signal::wait_for(std::chrono::milliseconds timeout) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(timeout);
  auto group =
      asio::experimental::make_parallel_group(ch_.async_receive(asio::deferred), timer.async_wait(asio::deferred));
  auto [order, received, waited] =
      co_await std::move(group).async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
  co_return order[0] == 0;
}

void Signal::close() { ch_.close(); }

}  // namespace spool
