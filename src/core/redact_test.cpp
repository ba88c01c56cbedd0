#include "core/redact.hpp"

#include <gtest/gtest.h>

namespace spool {
namespace {

TEST(RedactUrl, UserinfoAndCredentialQueryValuesBecomeStars) {
  EXPECT_EQ(redact_url("http://user:pass@host:8080/v1?api-key=abc&x=1"), "http://***@host:8080/v1?api-key=***&x=1");
  EXPECT_EQ(redact_url("https://tok@h/v1"), "https://***@h/v1");
  EXPECT_EQ(redact_url("http://h/v1?key=k&Token=t&access_token=a&client_secret=s&sig=z#frag"),
            "http://h/v1?key=***&Token=***&access_token=***&client_secret=***&sig=***#frag");
  EXPECT_EQ(redact_url("http://h/v1?API_KEY=1&model=m&password=p"), "http://h/v1?API_KEY=***&model=m&password=***");
}

TEST(RedactUrl, PlainUrlsAndTextAreUnchanged) {
  EXPECT_EQ(redact_url("http://127.0.0.1:11434/v1"), "http://127.0.0.1:11434/v1");
  EXPECT_EQ(redact_url("http://h/v1?model=m&stream=1"), "http://h/v1?model=m&stream=1");
  EXPECT_EQ(redact_url("http://h/path@x"), "http://h/path@x");  // an '@' in the path is no userinfo
  EXPECT_EQ(redact_url("not a url"), "not a url");
  EXPECT_EQ(redact_url(""), "");
}

}  // namespace
}  // namespace spool
