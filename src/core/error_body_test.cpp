#include "core/error_body.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace spool {
namespace {
namespace json = boost::json;

TEST(ErrorBody, MessageCarriesTheReasonAfterTheTitle) {
  const json::object b = error_body(make_error(Errc::overloaded, "Too many active streams (limit 2)"), std::nullopt);
  EXPECT_EQ(b.at("error").at("message").as_string(), "Overloaded: Too many active streams (limit 2)");
  EXPECT_EQ(b.at("error").at("detail").at("explanation").as_string(), "Too many active streams (limit 2)");
  EXPECT_EQ(b.at("detail").as_string(), "Too many active streams (limit 2)");
  const json::object long_one = error_body(make_error(Errc::invalid_request, std::string(5000, 'x')), std::nullopt);
  EXPECT_EQ(long_one.at("error").at("message").as_string().size(),
            1000u + 26);  // "Invalid Request Error: ", 1000 bytes, "..."
  EXPECT_EQ(long_one.at("detail").as_string().size(), 5000u);
  const json::object plain = error_body(make_error(Errc::method_not_allowed, ""), std::nullopt);
  EXPECT_EQ(plain.at("error").at("message").as_string(), "Method Not Allowed");
}

TEST(ErrorBody, TextIsTheObjectSerializedWithTheNullRequestIdLocated) {
  Error e{Errc::invalid_request, "body.messages: Field required",
          json::array{json::object{{"type", "missing"}, {"loc", json::array{"body", "messages"}}, {"msg", "x"}}}};
  std::size_t at = std::string::npos;
  const std::string text = error_body_text(e, std::nullopt, &at);
  EXPECT_EQ(text, json::serialize(error_body(e, std::nullopt)));
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(text.substr(at - 13, 17), R"("request_id":null)");
  std::size_t none = std::string::npos;
  const std::string with_id = error_body_text(e, "req_1", &none);
  EXPECT_EQ(none, std::string::npos);
  EXPECT_EQ(json::parse(with_id).at("request_id").as_string(), "req_1");
}

}  // namespace
}  // namespace spool
