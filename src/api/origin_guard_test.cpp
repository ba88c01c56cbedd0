#include "api/origin_guard.hpp"

#include <gtest/gtest.h>

namespace spool {
namespace {

std::optional<std::string> host(const OriginPolicy& p, const std::string& h) { return refused_host(p, &h); }

TEST(OriginGuard, HostsAServerAnswersToWithoutAuth) {
  const OriginPolicy p{"spool.lan", {"api.example.com", ".corp.example"}, {}};
  for (const char* ok :
       {"127.0.0.1", "127.0.0.1:8080", "[::1]:80", "192.168.1.20:9", "localhost", "LOCALHOST:8080", "app.localhost",
        "localhost.", "spool.lan:8080", "api.example.com", "x.corp.example", "corp.example"}) {
    EXPECT_EQ(host(p, ok), std::nullopt) << ok;
  }
  for (const char* bad : {"attacker.example", "localhost.attacker.example", "spool.lan.evil", "example.com",
                          "evilcorp.example", "127.0.0.1.nip.io", ""}) {
    EXPECT_NE(host(p, bad), std::nullopt) << bad;
  }
  EXPECT_EQ(refused_host(p, nullptr), std::nullopt) << "HTTP/1.0 without Host";
  const OriginPolicy any{"127.0.0.1", {"*"}, {}};
  EXPECT_EQ(host(any, "whatever.example"), std::nullopt);
}

TEST(OriginGuard, UnsafeMethodsOnlyFromTheSameOriginOrAnAllowedOne) {
  const OriginPolicy p{"127.0.0.1", {}, {"https://app.example.com"}};
  const std::string h = "127.0.0.1:8080";
  auto origin = [&](std::string_view method, const std::string& o) { return refused_origin(p, method, &o, &h); };
  EXPECT_EQ(refused_origin(p, "POST", nullptr, &h), std::nullopt) << "no Origin: not a browser page";
  EXPECT_EQ(origin("POST", "http://127.0.0.1:8080"), std::nullopt);
  EXPECT_EQ(origin("DELETE", "https://app.example.com"), std::nullopt);
  EXPECT_EQ(origin("GET", "http://attacker.example"), std::nullopt);
  EXPECT_NE(origin("POST", "http://attacker.example"), std::nullopt);
  EXPECT_NE(origin("POST", "http://127.0.0.1:9999"), std::nullopt) << "another port is another origin";
  EXPECT_NE(origin("DELETE", "null"), std::nullopt);
  EXPECT_NE(origin("PUT", "https://app.example.com.evil"), std::nullopt);
}

}  // namespace
}  // namespace spool
