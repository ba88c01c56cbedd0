#include "engine/stop_matcher.hpp"

#include <gtest/gtest.h>

namespace spool {
namespace {

TEST(StopMatcher, PassesTextWithoutStops) {
  StopMatcher m({});
  EXPECT_EQ(m.feed("hello ").emit, "hello ");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, StopsInsideOneDelta) {
  StopMatcher m({"END"});
  auto s = m.feed("abc END def");
  EXPECT_EQ(s.emit, "abc ");
  ASSERT_TRUE(s.stop);
  EXPECT_EQ(*s.stop, "END");
}

TEST(StopMatcher, StopSpanningDeltasIsHeldBack) {
  StopMatcher m({"b c"});
  auto s1 = m.feed("a b");
  EXPECT_EQ(s1.emit, "a ");
  EXPECT_FALSE(s1.stop);
  auto s2 = m.feed(" c d");
  EXPECT_EQ(s2.emit, "");
  ASSERT_TRUE(s2.stop);
  EXPECT_EQ(*s2.stop, "b c");
}

TEST(StopMatcher, HeldPrefixReleasedWhenNotAStop) {
  StopMatcher m({"xyz"});
  EXPECT_EQ(m.feed("ax").emit, "a");
  EXPECT_EQ(m.feed("b").emit, "xb");
  EXPECT_EQ(m.feed("xy").emit, "");
  EXPECT_EQ(m.flush(), "xy");
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  StopMatcher m({"zz", "b"});
  auto s = m.feed("a b zz");
  EXPECT_EQ(s.emit, "a ");
  EXPECT_EQ(*s.stop, "b");
}

}  // namespace
}  // namespace spool
