#include "broker/tombstones.hpp"

namespace spool {

void Tombstones::remember(const Tombstone& t) {
  if (most_ == 0) return;
  const std::uint64_t ticket = ++tickets_;
  by_id_[t.id] = Entry{t.incarnation, t.removed_at, ticket};
  order_.emplace_back(t.id, ticket);
  while (by_id_.size() > most_) pop_oldest();
  // Entries replaced or taken by next() linger in order_ until they reach its front: bound them.
  if (order_.size() > 2 * by_id_.size() + 64) {
    std::erase_if(order_, [this](const auto& o) {
      auto it = by_id_.find(o.first);
      return it == by_id_.end() || it->second.ticket != o.second;
    });
  }
}

std::uint32_t Tombstones::next(const std::string& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return 1;
  const std::uint32_t incarnation = it->second.incarnation == UINT32_MAX ? UINT32_MAX : it->second.incarnation + 1;
  by_id_.erase(it);
  return incarnation;
}

std::size_t Tombstones::sweep(SysTime now) {
  const std::size_t before = by_id_.size();
  // Removals are remembered in about the order they happened: stop at the first one still kept.
  while (!order_.empty()) {
    auto it = by_id_.find(order_.front().first);
    const bool current = it != by_id_.end() && it->second.ticket == order_.front().second;
    if (current && it->second.removed_at + memory_ > now) break;
    pop_oldest();
  }
  return before - by_id_.size();
}

void Tombstones::pop_oldest() {
  if (order_.empty()) return;
  auto it = by_id_.find(order_.front().first);
  if (it != by_id_.end() && it->second.ticket == order_.front().second) by_id_.erase(it);
  order_.pop_front();
}

}  // namespace spool
