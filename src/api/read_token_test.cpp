#include "api/read_token.hpp"

#include <gtest/gtest.h>

namespace spool {
namespace {

const SysTime kNow = SysTime(std::chrono::seconds(1'800'000'000));

TEST(ReadTokens, ATokenGrantsItsIdAndIncarnationUntilItExpires) {
  const ReadTokens tokens("key", std::chrono::seconds(60));
  const std::string t = tokens.issue("job-1", 3, kNow);
  EXPECT_EQ(t.substr(0, t.find('.')), "1800000060");
  EXPECT_EQ(tokens.check(t, "job-1", kNow), 3u);
  EXPECT_EQ(tokens.check(t, "job-1", kNow + std::chrono::seconds(59)), 3u);
  EXPECT_FALSE(tokens.check(t, "job-1", kNow + std::chrono::seconds(60))) << "expired";
  EXPECT_FALSE(tokens.check(t, "job-2", kNow)) << "another job";
  EXPECT_FALSE(ReadTokens("other key", std::chrono::seconds(60)).check(t, "job-1", kNow)) << "another server's key";
}

TEST(ReadTokens, AnAlteredOrMalformedTokenGrantsNothing) {
  const ReadTokens tokens("key", std::chrono::seconds(60));
  const std::string t = tokens.issue("job-1", 1, kNow);
  const auto dot2 = t.rfind('.');
  const std::string mac = t.substr(dot2 + 1);
  EXPECT_EQ(mac.size(), 32u);
  EXPECT_FALSE(tokens.check("1900000000" + t.substr(t.find('.')), "job-1", kNow)) << "a later expiry";
  EXPECT_FALSE(tokens.check(t.substr(0, t.find('.')) + ".2." + mac, "job-1", kNow)) << "another incarnation";
  std::string flipped = t;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_FALSE(tokens.check(flipped, "job-1", kNow));
  for (const char* bad : {"", ".", "..", "1800000060", "1800000060.1", "1800000060.1.", "x.1.00", "1800000060.0.",
                          "01800000060.1.abc", "-1.1.abc", "1800000060.+1.abc"}) {
    EXPECT_FALSE(tokens.check(bad, "job-1", kNow)) << bad;
  }
  EXPECT_FALSE(tokens.check(t + std::string(100, 'a'), "job-1", kNow)) << "too long";
}

TEST(ReadTokens, TheDerivedKeyDependsOnTheSecretsNotTheirOrder) {
  EXPECT_EQ(ReadTokens::key_from_secrets({"a", "b"}), ReadTokens::key_from_secrets({"b", "a"}));
  EXPECT_NE(ReadTokens::key_from_secrets({"a", "b"}), ReadTokens::key_from_secrets({"a", "c"}));
  EXPECT_NE(ReadTokens::key_from_secrets({"ab"}), ReadTokens::key_from_secrets({"a", "b"}));
  EXPECT_EQ(ReadTokens::key_from_secrets({"a"}).size(), 32u);
}

}  // namespace
}  // namespace spool
