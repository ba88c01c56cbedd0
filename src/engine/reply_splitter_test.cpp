#include "engine/reply_splitter.hpp"

#include <gtest/gtest.h>

namespace spool {
namespace {

struct Folded {
  std::string thinking, text;
};

Folded fold(ReplySplitter& s, const std::vector<std::string>& pieces) {
  Folded f;
  auto add = [&](const std::vector<ReplySplitter::Delta>& ds) {
    for (const auto& d : ds) (d.thinking ? f.thinking : f.text) += d.text;
  };
  for (const auto& p : pieces) add(s.feed(p));
  add(s.finish());
  return f;
}

TEST(ReplySplitter, PlainTextPassesThrough) {
  ReplySplitter s({});
  auto f = fold(s, {"Hel", "lo ", "world"});
  EXPECT_EQ(f.text, "Hello world");
  EXPECT_EQ(f.thinking, "");
}

TEST(ReplySplitter, ThinkTagsMakeAThinkingBlockEvenWhenSplit) {
  ReplySplitter s({});
  auto f = fold(s, {"<thi", "nk>reason", "ing</th", "ink>\n\nanswer"});
  EXPECT_EQ(f.thinking, "reasoning");
  EXPECT_EQ(f.text, "answer");
}

TEST(ReplySplitter, TextThatOnlyLooksLikeATagIsText) {
  ReplySplitter s({});
  auto f = fold(s, {"<th", "ere"});
  EXPECT_EQ(f.text, "<there");
}

TEST(ReplySplitter, Utf8CharactersAreNeverCut) {
  ReplySplitter s({});
  const std::string check = "\xE2\x9C\x93";  // U+2713
  auto d1 = s.feed(check.substr(0, 1));
  EXPECT_TRUE(d1.empty());
  auto d2 = s.feed(check.substr(1));
  ASSERT_EQ(d2.size(), 1u);
  EXPECT_EQ(d2[0].text, check);
}

TEST(ReplySplitter, IncompleteCharacterAtEndBecomesReplacement) {
  ReplySplitter s({});
  auto f = fold(s, {"a\xE2\x9C"});
  EXPECT_EQ(f.text, "a\xEF\xBF\xBD");
}

TEST(ReplySplitter, StopSequenceEndsTextOnly) {
  ReplySplitter s({"STOP"});
  auto f = fold(s, {"<think>no STOP here</think>yes ST", "OP ignored"});
  EXPECT_EQ(f.thinking, "no STOP here");
  EXPECT_EQ(f.text, "yes ");
  ASSERT_TRUE(s.stopped());
  EXPECT_EQ(*s.stopped(), "STOP");
}

}  // namespace
}  // namespace spool
