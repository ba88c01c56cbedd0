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
