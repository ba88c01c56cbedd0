// Tests for resume position tracking and reconnection pacing.
#include "cli/resume.hpp"

#include <gtest/gtest.h>

namespace spool::cli {
namespace {

using namespace std::chrono_literals;
using Clock = ResumeTracker::Clock;

TEST(CliResume, LastEventIdIsTheLastSseIdSeen) {
  const auto t0 = Clock::now();
  ResumeTracker r("", 60s, false, t0);
  EXPECT_EQ(r.last_event_id(), "") << "first attempt: no Last-Event-ID";
  r.event("1");
  r.event("2");
  r.event("3");
  EXPECT_EQ(r.last_event_id(), "3");
  r.event("17");
  EXPECT_EQ(r.last_event_id(), "17") << "the server's id wins over counting";
}

TEST(CliResume, WithoutAnIdTheCountGoesOn) {
  const auto t0 = Clock::now();
  ResumeTracker from("41", 60s, false, t0);
  from.event("");
  EXPECT_EQ(from.last_event_id(), "42") << "--from N continues after N";
  from.event("x7");
  from.event("-1");
  EXPECT_EQ(from.last_event_id(), "44") << "an id that is not a position counts as absent";
}

TEST(CliResume, AReusedIdsIncarnationIsKept) {
  const auto t0 = Clock::now();
  ResumeTracker r("", 60s, false, t0);
  r.event("1.2");
  r.event("2.2");
  EXPECT_EQ(r.last_event_id(), "2.2") << "the whole id, suffix and all";
  r.event("");
  EXPECT_EQ(r.last_event_id(), "3.2") << "counting on stays in the incarnation";
  r.event("4.1");
  EXPECT_EQ(r.last_event_id(), "4");
  ResumeTracker from("7.3", 60s, false, t0);
  EXPECT_EQ(from.last_event_id(), "7.3");
  EXPECT_TRUE(ResumeTracker::is_event_id("7.3"));
  EXPECT_TRUE(ResumeTracker::is_event_id("0"));
  for (const char* bad : {"", "7.", ".3", "7.0", "7.3.1", "x", "-1", "7.3x"}) {
    EXPECT_FALSE(ResumeTracker::is_event_id(bad)) << bad;
  }
}

TEST(CliResume, BackoffDoublesToTwoSecondsAndResetsAfterEvents) {
  const auto t0 = Clock::now();
  ResumeTracker r("", 60s, true, t0);
  std::vector<std::chrono::milliseconds> seen;
  for (int i = 0; i < 6; ++i) {
    r.attempt_ended(false, t0);
    seen.push_back(*r.next_delay(t0));
  }
  EXPECT_EQ(seen, (std::vector<std::chrono::milliseconds>{200ms, 400ms, 800ms, 1600ms, 2000ms, 2000ms}));
  r.event("1");
  r.attempt_ended(true, t0);
  EXPECT_EQ(*r.next_delay(t0), 200ms) << "an attempt that delivered events starts over";
  r.attempt_ended(true, t0);
  EXPECT_EQ(*r.next_delay(t0), 400ms) << "one that delivered nothing does not";
}

TEST(CliResume, GivesUpAfterRetryForWithoutReachingTheServer) {
  const auto t0 = Clock::now();
  ResumeTracker r("5", 3s, true, t0);
  r.attempt_ended(true, t0 + 10s);  // answered, then dropped at t0+10s: the clock starts there
  EXPECT_TRUE(r.next_delay(t0 + 12s));
  r.attempt_ended(false, t0 + 12s);
  EXPECT_TRUE(r.next_delay(t0 + 12900ms));
  r.attempt_ended(false, t0 + 13s);
  EXPECT_FALSE(r.next_delay(t0 + 13s));
  EXPECT_EQ(r.last_event_id(), "5");
}

TEST(CliResume, ReachedOnceAnAttemptIsAnswered) {
  const auto t0 = Clock::now();
  ResumeTracker r("", 60s, false, t0);
  EXPECT_FALSE(r.reached());
  r.attempt_ended(false, t0);
  EXPECT_FALSE(r.reached());
  r.attempt_ended(true, t0);
  EXPECT_TRUE(r.reached());
}

}  // namespace
}  // namespace spool::cli
