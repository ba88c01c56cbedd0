// Leases: this instance renews its own and its running streams' every lease/3; a running stream
// whose owner's lease ran out ends with an "instance lost" error on whichever instance sees it first.
#include "broker/redis_broker_impl.hpp"

#include "core/error_body.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <spdlog/spdlog.h>

namespace spool {
namespace asio = boost::asio;

namespace {

constexpr std::string_view kInstanceLost = "instance lost";

}  // namespace

asio::awaitable<void> RedisBroker::Impl::lease_loop() {
  auto self = shared_from_this();
  asio::steady_timer t(ex);
  while (!stopping) {
    t.expires_after(std::max(opts.lease / 3, std::chrono::milliseconds(10)));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopping || !cmd->connected()) continue;
    const std::int64_t now = now_ms();
    co_await renew_leases(now);
    co_await check_cancels();
    // After an outage every lease looks expired: give their owners a lease period to renew.
    if (steady_ms() - cmd_up_since.load() < opts.lease.count()) continue;
    co_await end_lost_streams(now);
  }
}

// Renews the leases of this instance and of the streams it runs; forgets instances gone for an hour.
asio::awaitable<void> RedisBroker::Impl::renew_leases(std::int64_t now) {
  const std::string deadline = std::to_string(now + opts.lease.count());
  RedisCommand renew{"ZADD", keys.running(), "XX"};  // XX: never re-adds a stream the flusher removed
  {
    std::lock_guard lk(mu);
    for (const auto& [id, o] : owned) {
      renew.push_back(deadline);
      renew.push_back(id);
    }
  }
  if (renew.size() > 3) co_await cmd->command(std::move(renew));
  std::vector<RedisCommand> alive;
  alive.push_back(redis_args("ZADD", keys.instances(), deadline, opts.instance));
  alive.push_back(
      redis_args("ZREMRANGEBYSCORE", keys.instances(), "-inf", std::to_string(now - std::int64_t{3600} * 1000)));
  co_await cmd->pipeline(std::move(alive));
}

asio::awaitable<void> RedisBroker::Impl::check_cancels() {
  auto self = shared_from_this();
  std::vector<std::string> ids;
  {
    std::lock_guard lk(mu);
    for (const auto& [id, o] : owned) {
      if (!o.terminal) ids.push_back(id);
    }
  }
  if (ids.empty() || !cmd->connected()) co_return;
  std::vector<RedisCommand> gets;
  gets.reserve(ids.size());
  for (const auto& id : ids) gets.push_back(redis_args("HGET", keys.meta(id), "cancel_requested"));
  auto r = co_await cmd->pipeline(std::move(gets));
  if (!r) co_return;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if ((*r)[i].is_string() && (*r)[i].str == "1" && on_cancel) on_cancel(ids[i]);
  }
}

// Ends (up to 100 at a time) the running streams whose lease ran out before `now`.
asio::awaitable<void> RedisBroker::Impl::end_lost_streams(std::int64_t now) {
  auto due_cmd = redis_args("ZRANGEBYSCORE", keys.running(), "-inf", std::to_string(now), "LIMIT", "0", "100");
  auto due = co_await cmd->command(std::move(due_cmd));
  if (!due || !due->is_array() || due->elements.empty()) co_return;
  const std::string explanation = std::string(kInstanceLost) + ": the instance running this job stopped";
  std::vector<RedisCommand> ends;
  for (const auto& e : due->elements) {
    const std::string& id = e.str;
    const std::string event = boost::json::serialize(error_body(make_error(Errc::internal, explanation), id));
    const script::Lost lost{
        .id = id, .now_ms = now, .error_event = event, .reason = std::string(kInstanceLost), .expire = expire()};
    ends.push_back(scripts.command(lost));
  }
  auto r = co_await scripts.send(*cmd, std::move(ends));
  if (!r) co_return;
  for (std::size_t i = 0; i < r->size(); ++i) {
    if ((*r)[i].integer == 1) spdlog::warn("redis broker: {} ended: {}", due->elements[i].str, kInstanceLost);
  }
}

}  // namespace spool
