#include "stream/event_log.hpp"

#include <gtest/gtest.h>

#include <string>

namespace spool {
namespace {

std::string concat(const std::vector<boost::asio::const_buffer>& bufs) {
  std::string s;
  for (const auto& b : bufs) s.append(static_cast<const char*>(b.data()), b.size());
  return s;
}

TEST(EventLog, AppendFramesWithPositions) {
  EventLog log;
  EXPECT_EQ(log.append("message_start", R"({"a":1})"), 1u);
  EXPECT_EQ(log.append("message_stop", R"({"type":"message_stop"})"), 2u);
  EXPECT_EQ(log.size(), 2u);
  EXPECT_EQ(log.frame(1), "event: message_start\ndata: {\"a\":1}\nid: 1\n\n");
  EXPECT_EQ(log.frame(2), "event: message_stop\ndata: {\"type\":\"message_stop\"}\nid: 2\n\n");
  EXPECT_EQ(log.frame(3), "");
}

TEST(EventLog, ALaterIncarnationsIdsCarryIt) {
  EventLog log(2);
  EXPECT_EQ(log.append("ping", "{}"), 1u);
  EXPECT_EQ(log.frame(1), "event: ping\ndata: {}\nid: 1.2\n\n");
  EXPECT_EQ(log.bytes(), log.frame(1).size());
  EXPECT_EQ(to_string(EventId{8, 1}), "8") << "the first incarnation keeps plain positions";
  EXPECT_EQ(to_string(EventId{8, 3}), "8.3");
  EXPECT_EQ(to_string(EventId{UINT64_MAX, UINT32_MAX}), "18446744073709551615.4294967295");
  std::string out;
  append_frame(out, "a", "{}", EventId{12, 7});
  EXPECT_EQ(out, "event: a\ndata: {}\nid: 12.7\n\n");
  EXPECT_EQ(out.size(), frame_size("a", "{}", EventId{12, 7}));
}

TEST(EventLog, GatherFromEveryPositionAcrossSegments) {
  EventLog log;
  std::string all;
  for (int i = 0; i < 5000; ++i) {
    const std::string json = R"({"n":)" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 97), 'x') + "}";
    log.append("content_block_delta", json);
  }
  for (std::uint64_t i = 1; i <= log.size(); ++i) all += log.frame(i);
  EXPECT_EQ(all.size(), log.bytes());
  for (std::uint64_t from : {0ull, 1ull, 17ull, 2500ull, 4999ull, 5000ull}) {
    std::string got;
    std::uint64_t pos = from;
    while (pos < log.size()) {
      std::vector<boost::asio::const_buffer> bufs;
      const std::uint64_t next = log.gather(pos, log.size(), 10000, bufs);
      ASSERT_GT(next, pos);
      got += concat(bufs);
      pos = next;
    }
    std::string want;
    for (std::uint64_t i = from + 1; i <= log.size(); ++i) want += log.frame(i);
    EXPECT_EQ(got, want) << "from " << from;
  }
}

TEST(EventLog, GatherNothingAtEnd) {
  EventLog log;
  log.append("a", "{}");
  std::vector<boost::asio::const_buffer> bufs;
  EXPECT_EQ(log.gather(1, log.size(), 1000, bufs), 1u);
  EXPECT_TRUE(bufs.empty());
}

TEST(EventLog, GatherStopsAtUpto) {
  EventLog log;
  for (int i = 0; i < 10; ++i) log.append("e", "{\"i\":" + std::to_string(i) + "}");
  for (std::uint64_t upto : {0ull, 1ull, 4ull, 10ull, 99ull}) {
    std::vector<boost::asio::const_buffer> bufs;
    const std::uint64_t got = log.gather(0, upto, 1 << 20, bufs);
    EXPECT_EQ(got, std::min<std::uint64_t>(upto, 10));
    std::string want;
    for (std::uint64_t i = 1; i <= got; ++i) want += log.frame(i);
    EXPECT_EQ(concat(bufs), want) << "upto " << upto;
  }
}

TEST(EventLog, HugeEventGetsItsOwnSegment) {
  EventLog log;
  log.append("a", "{}");
  const std::string big(1 << 20, 'y');
  log.append("b", big);
  log.append("c", "{}");
  EXPECT_NE(log.frame(2).find(big), std::string_view::npos);
  std::vector<boost::asio::const_buffer> bufs;
  EXPECT_EQ(log.gather(0, log.size(), 1 << 30, bufs), 3u);
  EXPECT_EQ(concat(bufs), std::string(log.frame(1)) + std::string(log.frame(2)) + std::string(log.frame(3)));
}

TEST(EventLog, CopyIsTheFramesOfTheRangeAcrossSegments) {
  EventLog log;
  for (int i = 0; i < 500; ++i) log.append("e", std::string(static_cast<std::size_t>(i % 50), 'x'));
  for (auto [after, upto] :
       {std::pair<std::uint64_t, std::uint64_t>{0, 500}, {17, 18}, {100, 450}, {499, 900}, {500, 500}}) {
    std::string expected;
    for (std::uint64_t p = after + 1; p <= std::min<std::uint64_t>(upto, 500); ++p) expected += log.frame(p);
    std::string got = "prefix";
    log.copy(after, upto, got);
    EXPECT_EQ(got, "prefix" + expected) << after << ".." << upto;
  }
}

}  // namespace
}  // namespace spool
