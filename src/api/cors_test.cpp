#include "api/cors.hpp"

#include <gtest/gtest.h>

namespace spool {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string header(const http::Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "<absent>";
}

http::Request preflight(std::string origin, std::string asked_headers = {}) {
  http::Request req;
  req.method = "OPTIONS";
  req.target = "/v1/messages/async";
  req.headers = {{"origin", std::move(origin)}, {"access-control-request-method", "POST"}};
  if (!asked_headers.empty()) req.headers.emplace_back("access-control-request-headers", std::move(asked_headers));
  return req;
}

TEST(Cors, ConfiguredOriginsAreNormalizedAndCheckedAtStart) {
  auto p = make_cors_policy({"HTTPS://App.Example.com/", "http://localhost:5173", "*"}, std::chrono::seconds(60));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->origins, (std::vector<std::string>{"https://app.example.com", "http://localhost:5173", "*"}));
  for (const char* bad : {"app.example.com", "https://app.example.com/path", "https://", "://x", "https://u@h",
                          "ht tp://h", "https://a b"}) {
    auto refused = make_cors_policy({bad}, std::chrono::seconds(60));
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().explanation.find(bad), std::string::npos);
  }
}

TEST(Cors, OnlyListedOriginsAreAllowedExactlyOrAnyWithStar) {
  auto p = make_cors_policy({"https://app.example.com"}, std::chrono::seconds(60)).value();
  EXPECT_TRUE(cors_allows(p, "https://app.example.com"));
  EXPECT_TRUE(cors_allows(p, "HTTPS://APP.EXAMPLE.COM"));
  EXPECT_FALSE(cors_allows(p, "http://app.example.com"));
  EXPECT_FALSE(cors_allows(p, "https://app.example.com:8443"));
  EXPECT_FALSE(cors_allows(p, "https://evil.app.example.com"));
  EXPECT_FALSE(cors_allows(p, "null"));
  auto any = make_cors_policy({"*"}, std::chrono::seconds(60)).value();
  EXPECT_TRUE(cors_allows(any, "https://anything.test"));
}

TEST(Cors, APreflightOfAnAllowedOriginIs204WithMethodsHeadersAndMaxAge) {
  auto p = make_cors_policy({"https://app.example.com"}, std::chrono::seconds(600)).value();
  auto r = cors_preflight(p, preflight("https://app.example.com"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(header(*r, "Access-Control-Allow-Methods"), "GET, POST, DELETE, OPTIONS");
  EXPECT_EQ(header(*r, "Access-Control-Allow-Headers"),
            "Authorization, Content-Type, Last-Event-ID, Idempotency-Key, X-Request-Id");
  EXPECT_EQ(header(*r, "Access-Control-Max-Age"), "600");
}

TEST(Cors, HeadersAPreflightAsksForAreAllowedWhenTheyAreAPlainList) {
  auto p = make_cors_policy({"*"}, std::chrono::seconds(600)).value();
  auto r = cors_preflight(p, preflight("https://a.test", "anthropic-version, x-stainless-os"));
  EXPECT_EQ(header(*r, "Access-Control-Allow-Headers"),
            "Authorization, Content-Type, Last-Event-ID, Idempotency-Key, X-Request-Id, anthropic-version, "
            "x-stainless-os");
  auto odd = cors_preflight(p, preflight("https://a.test", "x\r\nSet-Cookie: a=b"));
  EXPECT_EQ(header(*odd, "Access-Control-Allow-Headers"),
            "Authorization, Content-Type, Last-Event-ID, Idempotency-Key, X-Request-Id");
  auto huge = cors_preflight(p, preflight("https://a.test", std::string(2000, 'x')));
  EXPECT_EQ(header(*huge, "Access-Control-Allow-Headers"),
            "Authorization, Content-Type, Last-Event-ID, Idempotency-Key, X-Request-Id");
}

TEST(Cors, APreflightOfAnotherOriginIs403WithoutAllowHeaders) {
  auto p = make_cors_policy({"https://app.example.com"}, std::chrono::seconds(600)).value();
  auto r = cors_preflight(p, preflight("https://evil.test"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(header(*r, "Access-Control-Allow-Methods"), "<absent>");
}

TEST(Cors, OffOrNotAPreflightLeavesTheRequestToTheRoutes) {
  EXPECT_FALSE(cors_preflight(CorsPolicy{}, preflight("https://app.example.com")));
  auto p = make_cors_policy({"*"}, std::chrono::seconds(600)).value();
  http::Request plain_options = preflight("https://a.test");
  plain_options.headers.pop_back();  // no Access-Control-Request-Method
  EXPECT_FALSE(cors_preflight(p, plain_options));
  http::Request get = preflight("https://a.test");
  get.method = "GET";
  EXPECT_FALSE(cors_preflight(p, get));
}

TEST(Cors, ResponsesNameTheAllowedOriginExposeRequestIdAndVaryOnOrigin) {
  auto p = make_cors_policy({"https://app.example.com"}, std::chrono::seconds(600)).value();
  http::Request req;
  req.headers = {{"origin", "https://app.example.com"}};
  http::Response r;
  add_cors_headers(p, req, r);
  EXPECT_EQ(r.headers, (Headers{{"Vary", "Origin"},
                                {"Access-Control-Allow-Origin", "https://app.example.com"},
                                {"Access-Control-Expose-Headers", "request-id"}}));
  http::Response other;
  req.headers = {{"origin", "https://evil.test"}};
  add_cors_headers(p, req, other);
  EXPECT_EQ(other.headers, (Headers{{"Vary", "Origin"}}));
  http::Response off;
  add_cors_headers(CorsPolicy{}, req, off);
  EXPECT_TRUE(off.headers.empty());
}

}  // namespace
}  // namespace spool
