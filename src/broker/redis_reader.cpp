// Copies of other instances' streams: each loaded once from Redis, then followed by one blocking
// XREAD per instance over all of them, so every observer of a stream here shares one reader.
#include "broker/redis_broker_impl.hpp"

#include "broker/redis_records.hpp"

#include <spdlog/spdlog.h>

namespace spool {
namespace asio = boost::asio;

// Copies entries [(entry id, [field, value, ...])] of `id`'s log into its copy here.
void RedisBroker::Impl::apply_entries(const std::string& id, const std::vector<RedisValue>& entries) {
  std::vector<NewEvent> events;
  bool terminal = false;
  std::shared_ptr<StreamWriter> writer;
  {
    std::lock_guard lk(mu);
    auto it = watched.find(id);
    if (it == watched.end()) return;
    Watched& w = it->second;
    writer = w.mirror;
    for (const auto& e : entries) {
      if (!e.is_array() || e.elements.size() < 2) continue;
      const std::string& eid = e.elements[0].str;
      const auto dash = eid.find('-');
      const auto pos = static_cast<std::uint64_t>(to_int(std::string_view(eid).substr(dash + 1)));
      if (pos != w.position + 1) continue;  // already copied (or a gap, which the writer never makes)
      NewEvent ev;
      const auto& f = e.elements[1].elements;
      for (std::size_t i = 0; i + 1 < f.size(); i += 2) {
        if (f[i].str == "type") ev.type = f[i + 1].str;
        if (f[i].str == "data") ev.json = f[i + 1].str;
      }
      terminal = terminal || is_terminal_event(ev.type);
      events.push_back(std::move(ev));
      w.position = pos;
    }
    if (terminal) w.terminal = true;
  }
  if (events.empty()) return;
  // The copy's status only tells its cursors when to end.
  const auto status = terminal ? std::optional<StreamStatus>(StreamStatus::completed) : std::nullopt;
  writer->publish(events, status);
}

asio::awaitable<void> RedisBroker::Impl::reader_loop() {
  auto self = shared_from_this();
  std::chrono::milliseconds backoff = kFirstBackoff;
  while (!stopping) {
    RedisCommand c{"XREAD", "COUNT", "1000", "BLOCK", "5000", "STREAMS"};
    std::vector<std::string> ids;
    {
      std::lock_guard lk(mu);
      for (const auto& [id, w] : watched) {
        if (w.loaded && !w.terminal) ids.push_back(id);
      }
      for (const auto& id : ids) c.push_back(keys.log(id));
      for (const auto& id : ids) c.push_back("0-" + std::to_string(watched.at(id).position));
    }
    if (ids.empty() || !reader->connected()) {
      co_await read_wake.wait();
      continue;
    }
    auto r = co_await reader->command(std::move(c));
    if (r && r->is_nil()) continue;  // unblocked or timed out
    if (!r || r->is_error()) {
      // Lost (the loop waits above until reconnected), or Redis cannot serve yet: retry later.
      const std::string why = r ? r->str : r.error().explanation;
      if (backoff == kFirstBackoff) spdlog::warn("redis broker: XREAD failed: {}", why);
      if (reader->connected()) co_await back_off(backoff);
      continue;
    }
    backoff = kFirstBackoff;
    for (const auto& s : r->elements) {
      if (!s.is_array() || s.elements.size() < 2) continue;
      if (auto id = RedisKeys::id_of_log(s.elements[0].str)) apply_entries(*id, s.elements[1].elements);
    }
  }
}

asio::awaitable<Status> RedisBroker::Impl::load_copy(const std::string& id) {
  auto args = redis_args("HMGET", keys.meta(id), "status", "model", "incarnation");
  auto meta = co_await cmd->command(std::move(args));
  if (!meta) co_return meta.error();
  if (meta->is_error()) co_return refused(*meta, "a read");
  if (!meta->is_array() || meta->elements.empty() || meta->elements[0].is_nil()) co_return not_found(id);
  std::shared_ptr<StreamWriter> writer;
  {
    const std::int64_t incarnation = meta->elements.size() > 2 ? to_int(meta->elements[2].str, 1) : 1;
    const auto copied = static_cast<std::uint32_t>(std::clamp<std::int64_t>(incarnation, 1, UINT32_MAX));
    StreamSpec copy{.id = id, .model = meta->elements[1].str, .incarnation = copied};
    auto created = co_await mirror.create(std::move(copy));
    std::lock_guard lk(mu);
    if (owned.count(id) == 0 && watched.count(id) == 0 && created) {
      watched[id].mirror = *created;
      watched[id].incarnation = copied;
      writer = *created;
    }
  }
  if (!writer) co_return Ok{};  // another open made the copy meanwhile
  auto range = redis_args("XRANGE", keys.log(id), "-", "+");
  auto log = co_await cmd->command(std::move(range));
  if (log && log->is_error()) log = refused(*log, "a read");
  if (!log) {
    {
      std::lock_guard lk(mu);
      watched.erase(id);
    }
    co_await mirror.remove(id, Removal::forget);
    co_return log.error();
  }
  apply_entries(id, log->elements);
  {
    std::lock_guard lk(mu);
    if (auto it = watched.find(id); it != watched.end()) it->second.loaded = true;
  }
  kick_reader();
  co_return Ok{};
}

}  // namespace spool
