#include "engine/registry.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

namespace spool {
namespace {

// An engine that follows no output format (as an engine without a constraint would).
class PlainEngine final : public Engine {
 public:
  std::shared_ptr<EngineRun> start(std::shared_ptr<const ChatRequest>, std::shared_ptr<EngineSink>) override {
    return nullptr;
  }
  Result<std::int64_t> count_tokens(const ChatRequest&) override { return 0; }
};

// An engine that follows formats but refuses every schema.
class PickyEngine final : public Engine {
 public:
  std::shared_ptr<EngineRun> start(std::shared_ptr<const ChatRequest>, std::shared_ptr<EngineSink>) override {
    return nullptr;
  }
  Result<std::int64_t> count_tokens(const ChatRequest&) override { return 0; }
  bool follows_output_format() const override { return true; }
  Status check_output_format(const OutputFormat&) const override {
    return make_error(Errc::invalid_request, "no grammar for it");
  }
};

TEST(CheckModelTakes, AnOutputFormatNeedsAnEngineThatFollowsIt) {
  ChatRequest req;
  const Model plain{"plain", "plain", std::make_shared<PlainEngine>()};
  EXPECT_TRUE(check_model_takes(plain, req).ok());  // no format: every engine takes it

  req.output_format = OutputFormat{};
  auto refused = check_model_takes(plain, req);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::invalid_request);
  EXPECT_EQ(refused.error().explanation, "model 'plain' (engine plain) cannot constrain output to a JSON schema");

  const Model picky{"p", "llama", std::make_shared<PickyEngine>()};
  auto why = check_model_takes(picky, req);
  ASSERT_FALSE(why.ok());
  EXPECT_EQ(why.error().explanation, "model 'p' (engine llama) cannot follow this output format: no grammar for it");
}

TEST(CheckModelTakes, TheMockFollowsSchemasItCanInstantiate) {
  boost::asio::io_context io;
  const Model mock{"m", "mock", std::make_shared<MockEngine>(io.get_executor(), MockOptions{})};
  ChatRequest req;
  req.output_format = OutputFormat{OutputFormat::Kind::json_schema, boost::json::object{{"type", "object"}}, {}, {}};
  EXPECT_TRUE(check_model_takes(mock, req).ok());
  req.output_format->schema = boost::json::object{{"not", true}, {"type", "array"}, {"minItems", 100000}};
  EXPECT_FALSE(check_model_takes(mock, req).ok());
}

}  // namespace
}  // namespace spool
