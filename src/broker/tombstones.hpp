// The incarnations of removed ids, remembered for a while (SPEC §1.2): a stream created again
// under an id gets the incarnation after the one its id last had, so no cursor of the old stream
// resumes into the new one. Not thread-safe (the memory broker holds it under its lock).
#pragma once

#include "core/clock.hpp"
#include "stream/stream_store.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

namespace spool {

// Tombstones of removed ids, each kept `memory` after its removal and at most `most` at once
// (the oldest forgotten first; most 0: none kept).
class Tombstones {
 public:
  Tombstones(std::chrono::milliseconds memory, std::size_t most) : memory_(memory), most_(most) {}

  // Remembers that `t.id` was at incarnation `t.incarnation` when removed at `t.removed_at`.
  void remember(const Tombstone& t);
  // The incarnation a new stream of `id` gets (its tombstone's + 1, else 1); forgets the tombstone.
  std::uint32_t next(const std::string& id);
  // Forgets the tombstones older than `memory` at `now`; returns how many.
  std::size_t sweep(SysTime now);
  // Tombstones held.
  std::size_t size() const { return by_id_.size(); }

 private:
  struct Entry {
    std::uint32_t incarnation;
    SysTime removed_at;
    std::uint64_t ticket;  // of its place in order_
  };
  // Drops order_'s front (forgetting its tombstone, unless that one was replaced since).
  void pop_oldest();

  std::chrono::milliseconds memory_;
  std::size_t most_;
  std::unordered_map<std::string, Entry> by_id_;
  std::deque<std::pair<std::string, std::uint64_t>> order_;  // (id, ticket), oldest remembered first
  std::uint64_t tickets_ = 0;
};

}  // namespace spool
