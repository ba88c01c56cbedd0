// The Redis broker's Lua scripts, each called through an argument struct that builds its KEYS and
// ARGV by name, and the set of them as loaded on one connection.
#pragma once

#include "broker/redis_connection.hpp"
#include "broker/redis_keys.hpp"
#include "stream/stream_info.hpp"

#include <boost/asio/awaitable.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace spool {

using RedisCommand = std::vector<std::string>;

// A script call's KEYS and ARGV. Keys and leading arguments are named: the script reads each as a
// Lua local of that name. A call adds the same names in the same order whatever its values (the
// script's text is built from a default call's names). Arguments after the named ones (more()) the
// script reads from ARGV[rest] on.
class ScriptArgs {
 public:
  // Adds KEYS entry `name`.
  ScriptArgs& key(std::string_view name, std::string value);
  // Adds the named ARGV entry `name`; before any more().
  ScriptArgs& arg(std::string_view name, std::string value);
  // Adds an unnamed ARGV entry after the named ones.
  ScriptArgs& more(std::string value);

  // The keys' names, in order.
  const std::vector<std::string_view>& key_names() const { return key_names_; }
  // The named arguments' names, in order.
  const std::vector<std::string_view>& arg_names() const { return arg_names_; }
  // "numkeys key... arg..." of EVALSHA.
  void append_to(RedisCommand& c) const;

 private:
  std::vector<std::string_view> key_names_, arg_names_;
  std::vector<std::string> keys_, argv_;
};

namespace script {

using Milliseconds = std::chrono::milliseconds;

// Appends a batch of one stream's events and changes, if `instance` still owns it and it is not
// terminal. Positions already stored are skipped, so a batch retried after a lost reply is
// harmless. Returns the last position, -1 when the stream is gone or another instance owns it, -2
// when it is already terminal (ended by someone else). A batch that ends a stream that expires
// also sets its id's tombstone, to outlive the record by kIncarnationMemory.
struct Append {
  std::string id;
  std::string instance;
  std::int64_t now_ms = 0;
  std::optional<StreamStatus> status;  // nullopt: unchanged
  std::optional<std::string> error_message;
  Milliseconds expire{0};  // of a stream this batch ends; 0: kept
  std::optional<Usage> usage;
  std::optional<std::optional<int>> queue_position;            // nullopt: unchanged
  std::span<const std::pair<std::uint64_t, NewEvent>> events;  // (position, event)

  static const std::string_view lua;  // the body, after the preamble RedisScripts generates
  // The call's KEYS and ARGV.
  ScriptArgs args(const RedisKeys& k) const;
};

// Creates a pending stream's record owned by `instance` unless the id is taken, at the incarnation
// after its id's tombstone's (taking the tombstone), else 1. Returns the incarnation, or 0 when taken.
struct Create {
  std::string id;
  std::string instance;
  std::int64_t now_ms = 0;
  std::string model;
  int message_count = 0;
  bool thinking = false;
  std::string owner;

  static const std::string_view lua;  // the body, after the preamble RedisScripts generates
  // The call's KEYS and ARGV.
  ScriptArgs args(const RedisKeys& k) const;
};

// Ends stream `id` with `error_event` if it runs and its owner's lease ran out before `now_ms`
// (setting its tombstone ahead as Append does). Returns 1 when it ended the stream.
struct Lost {
  std::string id;
  std::int64_t now_ms = 0;
  std::string error_event;  // the event's JSON
  std::string reason;       // the record's error_message
  Milliseconds expire{0};   // 0: kept

  static const std::string_view lua;  // the body, after the preamble RedisScripts generates
  // The call's KEYS and ARGV.
  ScriptArgs args(const RedisKeys& k) const;
};

// Removes a stream's record, log and observer counts; with `tombstone`, leaves its id's tombstone
// for kIncarnationMemory. Returns how many of those keys there were (0: no such stream).
struct Remove {
  std::string id;
  bool tombstone = true;

  static const std::string_view lua;  // the body, after the preamble RedisScripts generates
  // The call's KEYS and ARGV.
  ScriptArgs args(const RedisKeys& k) const;
};

// Records a cancel request in the stream's record (where the running instance finds it even if it
// misses the message), then publishes it. Returns 0 when the stream is gone.
struct Cancel {
  std::string id;

  static const std::string_view lua;  // the body, after the preamble RedisScripts generates
  // The call's KEYS and ARGV.
  ScriptArgs args(const RedisKeys& k) const;
};

// Sets `instance`'s count of open observers of a stream (0 removes it); the counts expire with
// the stream. Returns 0 when the stream is gone.
struct Observers {
  std::string id;
  std::string instance;
  int count = 0;

  static const std::string_view lua;  // the body, after the preamble RedisScripts generates
  // The call's KEYS and ARGV.
  ScriptArgs args(const RedisKeys& k) const;
};

// Binds Idempotency-Key `key` to `value` for `ttl` if it still holds `expected` (whose stream is
// gone). Returns 1 when replaced.
struct Rebind {
  std::string key;
  std::string expected;
  std::string value;
  Milliseconds ttl{0};

  static const std::string_view lua;  // the body, after the preamble RedisScripts generates
  // The call's KEYS and ARGV.
  ScriptArgs args(const RedisKeys& k) const;
};

// Removes a stream whose create got no reply (the connection failed after sending it), so the 503
// its client got stays true: only while it is still `instance`'s, pending and empty; its id's
// tombstone is set again (its incarnation stays used). Returns 1 when removed.
struct Abandon {
  std::string id;
  std::string owner;
  std::string instance;

  static const std::string_view lua;  // the body, after the preamble RedisScripts generates
  // The call's KEYS and ARGV.
  ScriptArgs args(const RedisKeys& k) const;
};

}  // namespace script

// Every script, its text (built once, with the terminal statuses from is_terminal) and its SHA as
// loaded on the command connection.
class RedisScripts {
 public:
  // The scripts' keys are named by `keys`.
  explicit RedisScripts(RedisKeys keys);

  // The EVALSHA command of `call`.
  template <class Call>
  RedisCommand command(const Call& call) const {
    return evalsha(index_of<Call>(), call.args(keys_));
  }

  // Loads every script on `conn` (SCRIPT LOAD) and keeps their SHAs.
  boost::asio::awaitable<Status> load(RedisConnection& conn);

  // Sends `cmds` (which may call the scripts) on `conn`; when Redis no longer has the scripts (it
  // restarted), loads them and sends the commands once more. Each command must be safe to repeat.
  boost::asio::awaitable<Result<std::vector<RedisValue>>> send(RedisConnection& conn, std::vector<RedisCommand> cmds);

  // True once loaded, until forget().
  bool loaded() const { return loaded_; }
  // The connection they were loaded on is new, or Redis said NOSCRIPT: not loaded any more.
  void forget() { loaded_ = false; }

  // The Lua text of `Call`'s script, as loaded.
  template <class Call>
  const std::string& text() const {
    return texts_[index_of<Call>()];
  }

 private:
  using Calls = std::tuple<script::Append, script::Create, script::Lost, script::Cancel, script::Observers,
                           script::Rebind, script::Abandon, script::Remove>;
  static constexpr std::size_t kCount = std::tuple_size_v<Calls>;

  template <class Call, std::size_t I = 0>
  static constexpr std::size_t index_of() {
    if constexpr (std::is_same_v<std::tuple_element_t<I, Calls>, Call>) {
      return I;
    } else {
      return index_of<Call, I + 1>();
    }
  }
  RedisCommand evalsha(std::size_t script, const ScriptArgs& args) const;

  RedisKeys keys_;
  std::array<std::string, kCount> texts_;
  mutable std::mutex mu_;
  std::array<std::string, kCount> shas_;  // under mu_
  std::atomic<bool> loaded_{false};
};

// True for Redis's reply to a script it does not have.
bool is_noscript(const RedisValue& v);

}  // namespace spool
