#include "engine/mock_engine.hpp"

#include <gtest/gtest.h>

namespace spool {
namespace {

std::string join(const std::vector<std::string_view>& v) {
  std::string s;
  for (auto x : v) s += x;
  return s;
}

TEST(MockTokens, WordsKeepTrailingWhitespace) {
  auto t = mock_tokens("hello  world\nfoo");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0], "hello  ");
  EXPECT_EQ(t[1], "world\n");
  EXPECT_EQ(t[2], "foo");
}

TEST(MockTokens, LeadingWhitespaceJoinsFirstToken) {
  auto t = mock_tokens("  a b ");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], "  a ");
  EXPECT_EQ(t[1], "b ");
}

TEST(MockTokens, ConcatenationIsExact) {
  for (std::string s : {"", " ", "x", "  lead", "trail  ", "a\tb\r\nc  d", "ünïcödé wörds ✓"}) {
    EXPECT_EQ(join(mock_tokens(s)), s);
  }
}

TEST(MockInputTokens, CountsWordsOfMessagesAndSystem) {
  ChatRequest r;
  r.system = "be  brief";
  ChatMessage m;
  m.role = "user";
  m.content.push_back(ContentBlock{"text", "one two three", "", "", {}});
  m.content.push_back(ContentBlock{"image", "", "", "", {}});
  r.messages.push_back(m);
  EXPECT_EQ(mock_input_tokens(r), 5);
}

}  // namespace
}  // namespace spool
