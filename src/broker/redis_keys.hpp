// The names of the Redis broker's keys and channel (their layout is in redis_broker.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace spool {

// Every key and channel name, under one prefix. {id} is a hash tag: a stream's keys share a slot.
struct RedisKeys {
  std::string prefix;  // every name starts with it

  // A stream's record (hash).
  std::string meta(std::string_view id) const { return stream(id, "meta"); }
  // A stream's events (stream), entry 0-N for event N.
  std::string log(std::string_view id) const { return stream(id, "log"); }
  // A stream's open observers per instance (hash).
  std::string observers(std::string_view id) const { return stream(id, "observers"); }
  // A removed id's last incarnation (string), kept kIncarnationMemory after the removal (set
  // ahead, with the expiry, when a stream that expires ends).
  std::string tomb(std::string_view id) const { return stream(id, "tomb"); }
  // Running streams by lease deadline (sorted set).
  std::string running() const { return prefix + "running"; }
  // Instances by lease deadline (sorted set).
  std::string instances() const { return prefix + "instances"; }
  // Every stream by created_at (sorted set).
  std::string created() const { return prefix + "created"; }
  // One owner's streams by created_at (sorted set; entries of gone streams linger until pruned).
  std::string owned(std::string_view owner) const { return prefix + "owned:" + std::string(owner); }
  // The job an Idempotency-Key started (string).
  std::string idempotency(std::string_view key) const { return prefix + "idempotency:" + std::string(key); }
  // Cancel and delete messages (pub/sub channel).
  std::string control() const { return prefix + "control"; }

  // The id inside a log key; nullopt when `key` is not one.
  static std::optional<std::string> id_of_log(std::string_view key) {
    const auto open = key.find('{');
    const auto close = key.rfind("}:log");
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) return std::nullopt;
    return std::string(key.substr(open + 1, close - open - 1));
  }

 private:
  std::string stream(std::string_view id, std::string_view part) const {
    std::string k = prefix;
    k.append("{").append(id).append("}:").append(part);
    return k;
  }
};

}  // namespace spool
