// Sweeps: copies of other instances' streams that nobody here observes (or whose record vanished)
// are dropped; index entries of streams that are gone are pruned.
#include "broker/redis_broker_impl.hpp"

#include "broker/redis_records.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace spool {
namespace asio = boost::asio;

asio::awaitable<void> RedisBroker::Impl::mirror_sweep() {
  auto self = shared_from_this();
  asio::steady_timer t(ex);
  while (!stopping) {
    t.expires_after(std::chrono::seconds(1));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    co_await drop_vanished_copies();
    drop_idle_copies();
  }
}

// A followed stream whose record vanished (deleted while this instance missed the message, or
// lost with a Redis that kept no data), or whose id names a later incarnation now, ends for its
// observers here.
asio::awaitable<void> RedisBroker::Impl::drop_vanished_copies() {
  std::vector<std::pair<std::string, std::uint32_t>> following;  // (id, incarnation copied)
  {
    std::lock_guard lk(mu);
    for (const auto& [id, w] : watched) {
      if (w.loaded && !w.terminal) following.emplace_back(id, w.incarnation);
    }
  }
  if (following.empty() || !cmd->connected()) co_return;
  std::vector<RedisCommand> checks;
  checks.reserve(following.size());
  for (const auto& f : following) checks.push_back(redis_args("HMGET", keys.meta(f.first), "status", "incarnation"));
  auto records = co_await cmd->pipeline(std::move(checks));
  for (std::size_t i = 0; records && i < following.size(); ++i) {
    const RedisValue& r = (*records)[i];
    if (r.is_error() || !r.is_array() || r.elements.size() < 2) continue;
    const bool gone = r.elements[0].is_nil();
    if (!gone && to_int(r.elements[1].str, 1) == following[i].second) continue;
    {
      std::lock_guard lk(mu);
      watched.erase(following[i].first);
    }
    co_await mirror.remove(following[i].first, Removal::forget);
  }
}

// Drops the copies unobserved for two sweeps in a row.
void RedisBroker::Impl::drop_idle_copies() {
  // Under the lock, so an open() either sees the copy (and its cursor keeps it) or not (and
  // makes a new one); one that checked just before finds it gone and makes a new one.
  std::lock_guard lk(mu);
  for (auto it = watched.begin(); it != watched.end();) {
    if (mirror.observers_of(it->first) > 0) {
      it->second.idle_sweeps = 0;
    } else if (++it->second.idle_sweeps >= 2 && mirror.remove_if_unobserved(it->first)) {
      it = watched.erase(it);
      continue;
    }
    ++it;
  }
}

// A caller at its limit must not make every start scan the index, hence at most once every 10 s.
asio::awaitable<Status> RedisBroker::Impl::prune(std::string key) {
  constexpr std::int64_t kEvery = 10000;
  constexpr std::size_t kSlice = 500;
  {
    std::lock_guard lk(mu);
    auto& last = last_prune[key];
    if (last != 0 && steady_ms() - last < kEvery) co_return Ok{};
    last = steady_ms();
  }
  for (std::size_t offset = 0;; offset += kSlice) {
    auto range = redis_args("ZRANGE", key, std::to_string(offset), std::to_string(offset + kSlice - 1));
    auto ids = co_await cmd->command(std::move(range));
    if (!ids) co_return ids.error();
    if (ids->is_error()) co_return refused(*ids, "a count");
    if (ids->elements.empty()) co_return Ok{};
    std::vector<RedisCommand> checks;
    for (const auto& e : ids->elements) checks.push_back(redis_args("EXISTS", keys.meta(e.str)));
    auto exists = co_await cmd->pipeline(std::move(checks));
    if (!exists) co_return exists.error();
    RedisCommand gone{"ZREM", key};
    for (std::size_t i = 0; i < ids->elements.size(); ++i) {
      if (!(*exists)[i].is_error() && (*exists)[i].integer == 0) gone.push_back(ids->elements[i].str);
    }
    if (gone.size() > 2) {
      auto removed = co_await cmd->command(std::move(gone));
      if (!removed) co_return removed.error();
      offset -= std::min<std::size_t>(offset, static_cast<std::size_t>(removed->integer));
    }
    if (ids->elements.size() < kSlice) co_return Ok{};
  }
}

}  // namespace spool
