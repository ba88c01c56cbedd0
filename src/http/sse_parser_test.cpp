#include "http/sse_parser.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace spool {
namespace {

std::vector<SseEvent> parse_split(std::string_view text, std::size_t step) {
  std::vector<SseEvent> out;
  SseParser p([&](SseEvent&& e) {
    out.push_back(std::move(e));
    return true;
  });
  for (std::size_t i = 0; i < text.size(); i += step) p.feed(text.substr(i, step));
  return out;
}

TEST(SseParser, EventsAtEverySplit) {
  const std::string text =
      ": comment\r\nevent: a\r\ndata: {\"x\":1}\r\n\r\ndata: line1\ndata:line2\n\nid: 3\rdata: [DONE]\r\r";
  for (std::size_t step = 1; step <= text.size(); ++step) {
    auto ev = parse_split(text, step);
    ASSERT_EQ(ev.size(), 3u) << step;
    EXPECT_EQ(ev[0].event, "a");
    EXPECT_EQ(ev[0].data, "{\"x\":1}");
    EXPECT_EQ(ev[1].event, "");
    EXPECT_EQ(ev[1].data, "line1\nline2");
    EXPECT_EQ(ev[2].data, "[DONE]");
    EXPECT_EQ(ev[0].id, "");
    EXPECT_EQ(ev[2].id, "3");
  }
}

TEST(SseParser, IdBelongsToItsOwnEventOnly) {
  auto ev = parse_split("event: a\ndata: 1\nid: 7\n\nid: 99\n\nevent: b\ndata: 2\n\nid: 8\nevent: c\ndata: 3\n\n", 3);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].id, "7");
  EXPECT_EQ(ev[1].id, "");  // an id on a frame with no data is dropped with it
  EXPECT_EQ(ev[2].id, "8");
}

TEST(SseParser, IncompleteEventIsHeld) {
  auto ev = parse_split("data: partial\n", 4);
  EXPECT_TRUE(ev.empty());
}

TEST(SseParser, CallbackCanStop) {
  int n = 0;
  SseParser p([&](SseEvent&&) { return ++n < 1; });
  EXPECT_FALSE(p.feed("data: a\n\ndata: b\n\n"));
  EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace spool

namespace spool {
namespace {

TEST(SseParser, ALineLongerThanTheLimitStopsItWithoutHoldingMore) {
  int events = 0;
  SseParser p(
      [&](SseEvent&&) {
        ++events;
        return true;
      },
      16);
  EXPECT_TRUE(p.feed("data: 0123456789\n\n"));  // a 16-byte line is fine
  const std::string endless(1000, 'x');
  EXPECT_TRUE(p.feed(endless.substr(0, 10)));
  EXPECT_FALSE(p.feed(endless));
  EXPECT_EQ(p.overflow(), "an SSE line of more than 16 bytes");
  EXPECT_LE(p.pending(), 16u);
  EXPECT_FALSE(p.feed("\n\n"));  // stopped for good
  EXPECT_EQ(events, 1);
}

TEST(SseParser, AnEventLongerThanTheLimitStopsIt) {
  SseParser p([](SseEvent&&) { return true; }, 20);
  EXPECT_TRUE(p.feed("data: 0123456789\ndata: 012345678\n"));  // 10 + 1 + 9 = 20 bytes of data
  EXPECT_FALSE(p.feed("data: x\n"));
  EXPECT_EQ(p.overflow(), "an SSE event of more than 20 bytes");
}

}  // namespace
}  // namespace spool
