#include "core/utf8.hpp"

#include <gtest/gtest.h>

namespace spool {
namespace {

TEST(Utf8, WellFormedTextIsValid) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));  // é € 😀
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));                      // U+10FFFF
}

TEST(Utf8, IllFormedSequencesAreNot) {
  for (std::string_view bad : {"\xFF", "\xC3", "\xC3\x28", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80",
                               "\xF4\x90\x80\x80", "\xF0\x9F\x98", "a\x80z"}) {
    EXPECT_FALSE(is_valid_utf8(bad)) << testing::PrintToString(std::string(bad));
  }
}

TEST(Utf8, ReplacementKeepsGoodTextAndMarksEachBadByte) {
  EXPECT_EQ(to_valid_utf8("h\xC3\xA9llo"), "h\xC3\xA9llo");
  EXPECT_EQ(to_valid_utf8("a\xFF"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(to_valid_utf8("\xC3\x28"), "\xEF\xBF\xBD(");
  EXPECT_EQ(to_valid_utf8("\xF0\x9F\x98"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(is_valid_utf8(to_valid_utf8("\xED\xA0\x80\xC0\xAF\xFE")));
}

}  // namespace
}  // namespace spool

namespace spool {
namespace {

TEST(Utf8, BoundedTextCutsAtACharacterAndMarksTheCut) {
  EXPECT_EQ(bounded_text("short", 10), "short");
  EXPECT_EQ(bounded_text("0123456789", 10), "0123456789");
  EXPECT_EQ(bounded_text("0123456789ab", 10), "0123456789...");
  EXPECT_EQ(bounded_text("12345678\xE2\x82\xAC", 10), "12345678...");  // € would pass the bound: dropped whole
  EXPECT_EQ(bounded_text("a\xFF", 10), "a\xEF\xBF\xBD");
  EXPECT_TRUE(is_valid_utf8(bounded_text(std::string(20, '\xE9'), 10)));
}

}  // namespace
}  // namespace spool
