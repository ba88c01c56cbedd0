#include "broker/tombstones.hpp"

#include <gtest/gtest.h>

namespace spool {
namespace {

using namespace std::chrono_literals;

TEST(Tombstones, AnIdsNextIncarnationFollowsItsTombstoneOnce) {
  Tombstones t(1h, 10);
  const SysTime now = std::chrono::system_clock::now();
  EXPECT_EQ(t.next("a"), 1u);
  t.remember(Tombstone{"a", 1, now});
  t.remember(Tombstone{"b", 7, now});
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.next("a"), 2u);
  EXPECT_EQ(t.next("a"), 1u) << "taken";
  EXPECT_EQ(t.next("b"), 8u);
  t.remember(Tombstone{"c", UINT32_MAX, now});
  EXPECT_EQ(t.next("c"), UINT32_MAX) << "never wraps to 0";
}

TEST(Tombstones, TheOldestGoFirstPastTheCapAndAfterTheirMemory) {
  Tombstones t(10s, 3);
  const SysTime t0 = std::chrono::system_clock::now();
  for (int i = 0; i < 5; ++i) t.remember(Tombstone{"s" + std::to_string(i), 2, t0 + std::chrono::seconds(i)});
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.next("s1"), 1u) << "forgotten past the cap";
  EXPECT_EQ(t.next("s2"), 3u);
  t.remember(Tombstone{"s3", 5, t0 + 5s});  // remembered again: its latest removal counts
  EXPECT_EQ(t.sweep(t0 + 14500ms), 1u) << "s4 (removed at t0 + 4 s) is past its 10 s";
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.sweep(t0 + 16s), 1u);
  EXPECT_EQ(t.size(), 0u);
  // Many ids taken again leave no trail behind.
  for (int i = 0; i < 10000; ++i) {
    t.remember(Tombstone{"r", 1, t0});
    EXPECT_EQ(t.next("r"), 2u);
  }
  EXPECT_EQ(t.sweep(t0), 0u);
  Tombstones none(10s, 0);
  none.remember(Tombstone{"a", 4, t0});
  EXPECT_EQ(none.next("a"), 1u) << "most 0: none kept";
}

}  // namespace
}  // namespace spool
