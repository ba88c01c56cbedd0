#include "broker/redis_scripts.hpp"

#include "broker/redis_records.hpp"

#include <algorithm>

// Each script's text is a generated preamble (the terminal statuses as `terminal`, then its keys
// and named arguments as locals) followed by the body written here.
namespace spool {
namespace asio = boost::asio;

ScriptArgs& ScriptArgs::key(std::string_view name, std::string value) {
  key_names_.push_back(name);
  keys_.push_back(std::move(value));
  return *this;
}

ScriptArgs& ScriptArgs::arg(std::string_view name, std::string value) {
  arg_names_.push_back(name);
  argv_.push_back(std::move(value));
  return *this;
}

ScriptArgs& ScriptArgs::more(std::string value) {
  argv_.push_back(std::move(value));
  return *this;
}

void ScriptArgs::append_to(RedisCommand& c) const {
  c.push_back(std::to_string(keys_.size()));
  c.insert(c.end(), keys_.begin(), keys_.end());
  c.insert(c.end(), argv_.begin(), argv_.end());
}

namespace script {

namespace {

std::string or_empty(const std::optional<std::string>& s) { return s.value_or(""); }

// How long a tombstone outlives its stream, as a script argument.
std::string memory_ms() { return std::to_string(std::chrono::milliseconds(kIncarnationMemory).count()); }

}  // namespace

const std::string_view Append::lua = R"lua(
if redis.call('HGET', meta, 'instance') ~= instance then return -1 end
local st = redis.call('HGET', meta, 'status')
if terminal[st] then return -2 end
local last = tonumber(redis.call('HGET', meta, 'events') or '0')
for i = rest, #ARGV, 3 do
  local pos = tonumber(ARGV[i])
  if pos > last then
    redis.call('XADD', log, '0-' .. pos, 'type', ARGV[i + 1], 'data', ARGV[i + 2])
    last = pos
  end
end
redis.call('HSET', meta, 'events', last)
if input_tokens ~= '' then redis.call('HSET', meta, 'input_tokens', input_tokens, 'output_tokens', output_tokens) end
if queue_position == '-' then redis.call('HDEL', meta, 'queue_position')
elseif queue_position ~= '' then redis.call('HSET', meta, 'queue_position', queue_position) end
if status ~= '' and status ~= st then
  redis.call('HSET', meta, 'status', status, 'updated_at', now)
  if error_message ~= '' then redis.call('HSET', meta, 'error_message', error_message) end
  if terminal[status] then
    redis.call('HSET', meta, 'completed_at', now)
    redis.call('HDEL', meta, 'queue_position')
    if tonumber(expire_ms) > 0 then
      redis.call('PEXPIRE', meta, expire_ms)
      redis.call('PEXPIRE', log, expire_ms)
      redis.call('PEXPIRE', observers, expire_ms)
      redis.call('SET', tomb, redis.call('HGET', meta, 'incarnation') or '1', 'PX', expire_ms + memory_ms)
    end
  end
end
return last
)lua";

// Empty strings leave a field unchanged; queue_position "-" removes it. Events follow as
// (position, type, data) triples.
ScriptArgs Append::args(const RedisKeys& k) const {
  ScriptArgs a;
  a.key("meta", k.meta(id)).key("log", k.log(id)).key("observers", k.observers(id)).key("tomb", k.tomb(id));
  a.arg("instance", instance).arg("now", std::to_string(now_ms));
  a.arg("memory_ms", memory_ms());
  a.arg("status", status ? std::string(to_string(*status)) : "").arg("error_message", or_empty(error_message));
  a.arg("expire_ms", std::to_string(expire.count()));
  a.arg("input_tokens", usage ? std::to_string(usage->input_tokens) : "");
  a.arg("output_tokens", usage ? std::to_string(usage->output_tokens) : "");
  std::string queue;
  if (queue_position) queue = *queue_position ? std::to_string(**queue_position) : "-";
  a.arg("queue_position", std::move(queue));
  for (const auto& [pos, e] : events) a.more(std::to_string(pos)).more(e.type).more(e.json);
  return a;
}

const std::string_view Create::lua = R"lua(
if redis.call('EXISTS', meta) == 1 then return 0 end
local incarnation = tonumber(redis.call('GET', tomb) or '0') + 1
redis.call('DEL', tomb)
redis.call('HSET', meta, 'incarnation', incarnation, unpack(ARGV, rest))
return incarnation
)lua";

// The record's fields follow as (field, value) pairs.
ScriptArgs Create::args(const RedisKeys& k) const {
  ScriptArgs a;
  a.key("meta", k.meta(id)).key("tomb", k.tomb(id));
  const std::string now = std::to_string(now_ms);
  const std::pair<std::string_view, std::string> fields[] = {
      {"status", std::string(to_string(StreamStatus::pending))},
      {"instance", instance},
      {"created_at", now},
      {"updated_at", now},
      {"model", model},
      {"message_count", std::to_string(message_count)},
      {"thinking", thinking ? "1" : "0"},
      {"owner", owner},
      {"events", "0"},
      {"input_tokens", "0"},
      {"output_tokens", "0"},
  };
  for (const auto& [field, value] : fields) a.more(std::string(field)).more(value);
  return a;
}

const std::string_view Lost::lua = R"lua(
local score = redis.call('ZSCORE', running, id)
if not score or tonumber(score) > tonumber(now) then return 0 end
redis.call('ZREM', running, id)
local st = redis.call('HGET', meta, 'status')
if not st or terminal[st] then return 0 end
local last = tonumber(redis.call('HGET', meta, 'events') or '0') + 1
redis.call('XADD', log, '0-' .. last, 'type', event_type, 'data', error_event)
redis.call('HSET', meta, 'events', last, 'status', status, 'error_message', reason,
           'updated_at', now, 'completed_at', now, 'instance', '')
redis.call('HDEL', meta, 'queue_position')
if tonumber(expire_ms) > 0 then
  redis.call('PEXPIRE', meta, expire_ms)
  redis.call('PEXPIRE', log, expire_ms)
  redis.call('PEXPIRE', observers, expire_ms)
  redis.call('SET', tomb, redis.call('HGET', meta, 'incarnation') or '1', 'PX', expire_ms + memory_ms)
end
return 1
)lua";

ScriptArgs Lost::args(const RedisKeys& k) const {
  ScriptArgs a;
  a.key("running", k.running()).key("meta", k.meta(id)).key("log", k.log(id)).key("observers", k.observers(id));
  a.key("tomb", k.tomb(id));
  a.arg("id", id).arg("now", std::to_string(now_ms)).arg("error_event", error_event);
  a.arg("memory_ms", memory_ms());
  a.arg("expire_ms", std::to_string(expire.count()));
  a.arg("status", std::string(to_string(StreamStatus::error))).arg("reason", reason);
  a.arg("event_type", std::string(kErrorEventType));
  return a;
}

const std::string_view Cancel::lua = R"lua(
if redis.call('EXISTS', meta) == 0 then return 0 end
redis.call('HSET', meta, 'cancel_requested', '1')
redis.call('PUBLISH', channel, message)
return 1
)lua";

ScriptArgs Cancel::args(const RedisKeys& k) const {
  ScriptArgs a;
  a.key("meta", k.meta(id));
  a.arg("channel", k.control()).arg("message", "cancel " + id);
  return a;
}

const std::string_view Observers::lua = R"lua(
if redis.call('EXISTS', meta) == 0 then
  redis.call('DEL', observers)
  return 0
end
if count == '0' then redis.call('HDEL', observers, instance) else redis.call('HSET', observers, instance, count) end
local ttl = redis.call('PTTL', meta)
if ttl > 0 then redis.call('PEXPIRE', observers, ttl) end
return 1
)lua";

ScriptArgs Observers::args(const RedisKeys& k) const {
  ScriptArgs a;
  a.key("meta", k.meta(id)).key("observers", k.observers(id));
  a.arg("instance", instance).arg("count", std::to_string(count));
  return a;
}

const std::string_view Rebind::lua = R"lua(
if redis.call('GET', binding) ~= expected then return 0 end
redis.call('SET', binding, value, 'PX', ttl_ms)
return 1
)lua";

ScriptArgs Rebind::args(const RedisKeys& k) const {
  ScriptArgs a;
  a.key("binding", k.idempotency(key));
  a.arg("expected", expected).arg("value", value).arg("ttl_ms", std::to_string(ttl.count()));
  return a;
}

const std::string_view Abandon::lua = R"lua(
if redis.call('HGET', meta, 'instance') ~= instance then return 0 end
if redis.call('HGET', meta, 'status') ~= pending then return 0 end
if tonumber(redis.call('HGET', meta, 'events') or '0') > 0 then return 0 end
redis.call('SET', tomb, redis.call('HGET', meta, 'incarnation') or '1', 'PX', memory_ms)
redis.call('DEL', meta, log, observers)
redis.call('ZREM', running, id)
redis.call('ZREM', created, id)
redis.call('ZREM', owned, id)
return 1
)lua";

ScriptArgs Abandon::args(const RedisKeys& k) const {
  ScriptArgs a;
  a.key("meta", k.meta(id)).key("log", k.log(id)).key("observers", k.observers(id));
  a.key("running", k.running()).key("created", k.created()).key("owned", k.owned(owner)).key("tomb", k.tomb(id));
  a.arg("instance", instance).arg("id", id).arg("pending", std::string(to_string(StreamStatus::pending)));
  a.arg("memory_ms", memory_ms());
  return a;
}

const std::string_view Remove::lua = R"lua(
if redis.call('EXISTS', meta) == 1 then
  -- (a stream that ended set its tombstone ahead, to outlive its expiry: replaced or dropped)
  if tombstone == '1' then
    redis.call('SET', tomb, redis.call('HGET', meta, 'incarnation') or '1', 'PX', memory_ms)
  else
    redis.call('DEL', tomb)
  end
end
return redis.call('DEL', meta, log, observers)
)lua";

ScriptArgs Remove::args(const RedisKeys& k) const {
  ScriptArgs a;
  a.key("meta", k.meta(id)).key("log", k.log(id)).key("observers", k.observers(id)).key("tomb", k.tomb(id));
  a.arg("tombstone", tombstone ? "1" : "0").arg("memory_ms", memory_ms());
  return a;
}

}  // namespace script

namespace {

// `local a, b = T[1], T[2]` for `names` read from table `table`; nothing for no names.
std::string locals(const std::vector<std::string_view>& names, std::string_view table) {
  if (names.empty()) return "";
  std::string lhs = "local ", rhs;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string sep = i == 0 ? "" : ", ";
    lhs.append(sep).append(names[i]);
    rhs.append(sep).append(table).append("[").append(std::to_string(i + 1)).append("]");
  }
  return lhs + " = " + rhs + "\n";
}

// `local terminal = {['completed'] = true, ...}`, from is_terminal.
std::string terminal_statuses() {
  std::string t = "local terminal = {";
  for (auto st : kStatuses) {
    if (is_terminal(st)) t.append("['").append(to_string(st)).append("'] = true, ");
  }
  return t + "}\n";
}

template <class Call>
std::string script_text() {
  const ScriptArgs names = Call{}.args(RedisKeys{});
  return terminal_statuses() + locals(names.key_names(), "KEYS") + locals(names.arg_names(), "ARGV") +
         "local rest = " + std::to_string(names.arg_names().size() + 1) + "\n" + std::string(Call::lua);
}

}  // namespace

RedisScripts::RedisScripts(RedisKeys keys) : keys_(std::move(keys)) {
  [this]<std::size_t... I>(std::index_sequence<I...>) {
    ((texts_[I] = script_text<std::tuple_element_t<I, Calls>>()), ...);
  }
  (std::make_index_sequence<kCount>{});
}

RedisCommand RedisScripts::evalsha(std::size_t script, const ScriptArgs& args) const {
  RedisCommand c{"EVALSHA"};
  {
    std::lock_guard lk(mu_);
    c.push_back(shas_[script]);
  }
  args.append_to(c);
  return c;
}

asio::awaitable<Status> RedisScripts::load(RedisConnection& conn) {
  std::vector<RedisCommand> load;
  for (const auto& text : texts_) load.push_back({"SCRIPT", "LOAD", text});
  auto r = co_await conn.pipeline(std::move(load));
  if (!r) co_return r.error();
  for (const auto& v : *r) {
    if (!v.is_string()) co_return refused(v, "the broker's scripts");
  }
  loaded_ = true;
  std::lock_guard lk(mu_);
  for (std::size_t i = 0; i < kCount; ++i) shas_[i] = (*r)[i].str;
  co_return Ok{};
}

asio::awaitable<Result<std::vector<RedisValue>>> RedisScripts::send(RedisConnection& conn,
                                                                    std::vector<RedisCommand> cmds) {
  auto again = cmds;
  auto r = co_await conn.pipeline(std::move(cmds));
  if (!r || std::none_of(r->begin(), r->end(), is_noscript)) co_return r;
  loaded_ = false;
  auto loaded = co_await load(conn);
  if (!loaded) co_return loaded.error();
  co_return co_await conn.pipeline(std::move(again));
}

bool is_noscript(const RedisValue& v) { return v.is_error() && v.str.rfind("NOSCRIPT", 0) == 0; }

}  // namespace spool
