// The router against a fake job layer: the route table, the guard and auth middleware, and the
// exact bodies the edge answers with.
#include "api/router.hpp"

#include "engine/mock_engine.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>

#include <stdexcept>

namespace spool {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

// Records what the routes ask; answers from its fields.
class FakeJobs final : public Jobs {
 public:
  explicit FakeJobs(asio::any_io_executor ex) {
    registry.add(Model{"echo", "mock", std::make_shared<MockEngine>(ex, MockOptions{})});
  }
  std::vector<std::string> calls;
  std::optional<StartJob> last_start;
  Status cancel_result = Ok{};
  bool throw_on_info = false;
  std::pair<std::uint64_t, std::uint32_t> last_open;  // (after, incarnation) of the last open
  ModelRegistry registry;

  asio::awaitable<Result<Started>> start(StartJob job) override {
    calls.push_back("start " + job.id);
    last_start = job;
    co_return Started{job.id.empty() ? "generated" : job.id, false, nullptr};
  }
  asio::awaitable<Status> cancel(std::string id) override {
    calls.push_back("cancel " + id);
    co_return cancel_result;
  }
  asio::awaitable<Status> remove(std::string id, Removal how) override {
    calls.push_back("remove " + id + (how == Removal::forget ? " forget" : ""));
    co_return Ok{};
  }
  asio::awaitable<Result<StreamInfo>> info(std::string id) override {
    calls.push_back("info " + id);
    if (throw_on_info) throw std::runtime_error("the fake broke");
    if (id != "known") co_return make_error(Errc::not_found, "Stream with message_id " + id + " not found");
    StreamInfo i;
    i.id = id;
    co_return i;
  }
  asio::awaitable<Result<std::unique_ptr<Cursor>>> open(std::string id, std::uint64_t after, std::uint32_t incarnation,
                                                        asio::any_io_executor) override {
    calls.push_back("open " + id);
    last_open = {after, incarnation};
    // "reborn" is at its second incarnation.
    if (id == "reborn" && after > 0 && incarnation != 2) co_return incarnation_conflict(id, after, incarnation, 2);
    co_return make_error(Errc::not_found, "Stream with message_id " + id + " not found");
  }
  asio::awaitable<Result<StreamPage>> list(ListQuery q) override {
    calls.push_back("list " + std::to_string(q.limit));
    co_return StreamPage{};
  }
  asio::awaitable<Result<std::string>> owner(std::string id) override { co_return std::string(); }
  asio::awaitable<Result<std::int64_t>> count_tokens(const Model*, std::shared_ptr<const ChatRequest>) override {
    co_return std::int64_t{3};
  }
  std::size_t observers() const override { return 0; }
  int observers_of(const std::string&) const override { return 0; }
  std::vector<std::pair<StreamStatus, std::size_t>> counts() const override { return {}; }
  std::optional<std::string> broker_unready_reason() const override { return std::nullopt; }
  const ModelRegistry& models() const override { return registry; }
  std::size_t active() const override { return 0; }
  std::size_t queued() const override { return 0; }
  std::vector<std::pair<std::string, std::uint64_t>> output_tokens() const override { return {}; }
};

class RouterTest : public ::testing::Test {
 protected:
  http::Response call(std::string method, std::string target, std::string body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    Router router(opts, jobs, metrics);
    http::Request req;
    req.method = std::move(method);
    req.target = std::move(target);
    req.body = std::move(body);
    req.headers = std::move(headers);
    req.headers.emplace_back("host", "localhost");
    req.executor = io.get_executor();
    auto fut = asio::co_spawn(io, router.handle(std::move(req)), asio::use_future);
    io.restart();
    io.run();
    return fut.get();
  }

  asio::io_context io;
  ApiOptions opts;
  FakeJobs jobs{io.get_executor()};
  Metrics metrics;
};

const std::vector<std::pair<std::string, std::string>> kJson = {{"content-type", "application/json"}};
constexpr std::string_view kChat = R"({"messages":[{"role":"user","content":"hi"}]})";

TEST_F(RouterTest, EachRouteOfTheTableReachesItsHandler) {
  EXPECT_EQ(call("POST", "/v1/messages/async?message_id=a", std::string(kChat), kJson).status, 200);
  EXPECT_EQ(call("GET", "/v1/messages/async/known/status").status, 200);
  EXPECT_EQ(call("POST", "/v1/messages/async/known/cancel").status, 200);
  EXPECT_EQ(call("DELETE", "/v1/messages/async/known/delete").status, 200);
  EXPECT_EQ(call("GET", "/v1/messages/async?limit=7").status, 200);
  EXPECT_EQ(call("GET", "/v1/messages/async/gone/stream").status, 404);
  EXPECT_EQ(call("POST", "/v1/messages/count_tokens", std::string(kChat), kJson).body, R"({"input_tokens":3})");
  EXPECT_EQ(jobs.calls,
            (std::vector<std::string>{"start a", "info known", "cancel known", "remove known", "list 7", "open gone"}));
}

TEST_F(RouterTest, UnknownPathsAndWrongMethodsAnswerTheEdgeBodies) {
  const auto missing = call("GET", "/v1/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, R"({"detail":"Not Found"})");
  const auto wrong = call("PUT", "/v1/messages/async/known/status");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.body, R"({"detail":"Method Not Allowed"})");
  EXPECT_EQ(call("GET", "/v1/messages/async/known/unknown").status, 404);
  const auto unknown = call("GET", "/v1/messages/async/nope/status");
  EXPECT_EQ(unknown.body, R"({"detail":"Stream with message_id nope not found"})");
  EXPECT_TRUE(jobs.calls == std::vector<std::string>{"info nope"}) << "405s and 404s reach no handler";
}

TEST_F(RouterTest, WithASecretEveryRouteButHealthNeedsIt) {
  opts.tenants.push_back(Tenant{"", "Bearer s", 0, 0});
  const auto refused = call("GET", "/v1/messages/async/known/status");
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.body, R"({"detail":"Not authenticated"})");
  EXPECT_EQ(call("GET", "/v1/nothing").status, 401) << "an unknown path is not told apart without the secret";
  EXPECT_EQ(call("GET", "/health").status, 200);
  EXPECT_EQ(call("GET", "/v1/messages/async/known/status", {}, {{"authorization", "Bearer s"}}).status, 200);
  EXPECT_EQ(jobs.calls, std::vector<std::string>{"info known"});
}

TEST_F(RouterTest, AStartCarriesTheCallersLimitsAndIdempotencyKey) {
  opts.tenants.push_back(Tenant{"alice", "Bearer a", 5, 9});
  auto headers = kJson;
  headers.emplace_back("authorization", "Bearer a");
  headers.emplace_back("idempotency-key", "k1");
  const auto r = call("POST", "/v1/messages/async?message_id=x", std::string(kChat), headers);
  EXPECT_TRUE(r.body.starts_with(
      R"({"message_id":"x","status":"pending","message":"Request initiated successfully","read_token":")"))
      << r.body;
  ASSERT_TRUE(jobs.last_start);
  EXPECT_EQ(jobs.last_start->owner, "tenant:alice");
  EXPECT_EQ(jobs.last_start->owner_active_limit, 5u);
  EXPECT_EQ(jobs.last_start->owner_retained_limit, 9u);
  EXPECT_EQ(jobs.last_start->idempotency_key, "k1");
  EXPECT_EQ(jobs.last_start->model->name, "echo");
}

TEST_F(RouterTest, ACancelThatLostTheRaceIsA409NamingTheOutcome) {
  jobs.cancel_result = make_error(Errc::conflict, "Stream with message_id known ended as completed");
  const auto r = call("POST", "/v1/messages/async/known/cancel");
  EXPECT_EQ(r.status, 409);
  EXPECT_NE(r.body.find("ended as completed"), std::string::npos) << r.body;
}

TEST_F(RouterTest, AnExceptionInAHandlerIsA500WithTheRequestId) {
  jobs.throw_on_info = true;
  const auto r = call("GET", "/v1/messages/async/known/status", {}, {{"x-request-id", "req-7"}});
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find(R"("request_id":"req-7")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("the fake broke"), std::string::npos) << r.body;
}

TEST_F(RouterTest, WithoutAuthAForeignHostOrACrossSitePostIsRefused) {
  EXPECT_EQ(call("GET", "/v1/messages/async/known/status", {}, {{"host", "evil.example"}}).status, 403);
  http::Response r = call("POST", "/v1/messages/async/known/cancel", {}, {{"origin", "http://evil.example"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(jobs.calls.empty()) << "a refused call reaches no handler";
}

std::string header_of(const http::Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "<absent>";
}

TEST_F(RouterTest, WithCorsAPreflightIs204BeforeAuthOnEveryRoute) {
  opts.tenants.push_back(Tenant{"", "Bearer s", 0, 0});
  opts.cors = make_cors_policy({"https://app.test"}, std::chrono::seconds(60)).value();
  const std::vector<std::pair<std::string, std::string>> pre = {{"origin", "https://app.test"},
                                                                {"access-control-request-method", "POST"}};
  for (const char* path : {"/v1/messages/async", "/v1/messages/async/known/cancel", "/v1/messages", "/health"}) {
    const auto r = call("OPTIONS", path, {}, pre);
    EXPECT_EQ(r.status, 204) << path;
    EXPECT_EQ(header_of(r, "Access-Control-Allow-Origin"), "https://app.test") << path;
    EXPECT_EQ(header_of(r, "Vary"), "Origin") << path;
  }
  EXPECT_TRUE(jobs.calls.empty()) << "a preflight reaches no handler";
  const auto refused = call("GET", "/v1/messages/async/known/status", {}, {{"origin", "https://app.test"}});
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(header_of(refused, "Access-Control-Allow-Origin"), "https://app.test") << "the page can read the 401";
  EXPECT_EQ(header_of(refused, "Access-Control-Expose-Headers"), "request-id");
  EXPECT_EQ(call("OPTIONS", "/v1/messages/async", {},
                 {{"origin", "https://evil.test"}, {"access-control-request-method", "POST"}})
                .status,
            403);
  EXPECT_EQ(call("OPTIONS", "/v1/messages/async", {}, {{"authorization", "Bearer s"}}).status, 405)
      << "OPTIONS that is not a preflight is an ordinary request";
}

TEST_F(RouterTest, WithoutAuthACorsOriginMayPostAndOthersMayNot) {
  opts.cors = make_cors_policy({"https://app.test"}, std::chrono::seconds(60)).value();
  opts.origins.allowed_origins = opts.cors.origins;
  EXPECT_EQ(call("POST", "/v1/messages/async/known/cancel", {}, {{"origin", "https://app.test"}}).status, 200);
  EXPECT_EQ(call("POST", "/v1/messages/async/known/cancel", {}, {{"origin", "https://evil.test"}}).status, 403);
  EXPECT_EQ(jobs.calls, std::vector<std::string>{"cancel known"});
}

// The read_token the start answered with (the fake's stream "known" has incarnation 1).
std::string token_of(const http::Response& started) {
  const std::string key = R"("read_token":")";
  const auto at = started.body.find(key);
  if (at == std::string::npos) return {};
  const auto from = at + key.size();
  return started.body.substr(from, started.body.find('"', from) - from);
}

TEST_F(RouterTest, WithAuthAStartCarriesAReadTokenForThatStreamsStatusAndStreamOnly) {
  opts.tenants.push_back(Tenant{"", "Bearer s", 0, 0});
  auto headers = kJson;
  headers.emplace_back("authorization", "Bearer s");
  const std::string token = token_of(call("POST", "/v1/messages/async?message_id=known", std::string(kChat), headers));
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(call("GET", "/v1/messages/async/known/status?read_token=" + token).status, 200);
  EXPECT_EQ(call("GET", "/v1/messages/async/known/stream?read_token=" + token).status, 404) << "the fake opens nothing";
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"POST", "/v1/messages/async/known/cancel"},
                                                        {"DELETE", "/v1/messages/async/known/delete"},
                                                        {"GET", "/v1/messages/async"},
                                                        {"GET", "/metrics"},
                                                        {"GET", "/v1/messages/async/other/status"}}) {
    EXPECT_EQ(call(method, path + "?read_token=" + token).status, 401) << method << " " << path;
  }
  EXPECT_EQ(call("GET", "/v1/messages/async/known/status?read_token=" + token + "0").status, 401);
  EXPECT_EQ(call("GET", "/v1/messages/async/known/status?read_token=").status, 401);
}

TEST_F(RouterTest, WithoutAuthAStartHasNoReadToken) {
  const auto r = call("POST", "/v1/messages/async?message_id=a", std::string(kChat), kJson);
  EXPECT_EQ(r.body.find("read_token"), std::string::npos) << r.body;
}

TEST_F(RouterTest, ACursorNamesItsIncarnationAndOneOfAnotherIsA409) {
  using Open = std::pair<std::uint64_t, std::uint32_t>;
  EXPECT_EQ(call("GET", "/v1/messages/async/reborn/stream").status, 404);  // (the fake opens nothing)
  EXPECT_EQ(jobs.last_open, Open(0, 0)) << "no cursor: whichever incarnation is current";
  const auto old = call("GET", "/v1/messages/async/reborn/stream", {}, {{"last-event-id", "8"}});
  EXPECT_EQ(old.status, 409);
  EXPECT_EQ(jobs.last_open, Open(8, 1)) << "a plain position is of the first incarnation";
  const auto body = json::parse(old.body).as_object();
  EXPECT_EQ(body.at("type"), "error");
  EXPECT_EQ(body.at("detail"),
            "Last-Event-ID 8 belongs to incarnation 1 of stream reborn, which was deleted; the id now names "
            "incarnation 2 (resume it from the start, without Last-Event-ID)");
  EXPECT_EQ(body.at("error").at("detail").at("code"), "CONFLICT");
  EXPECT_EQ(call("GET", "/v1/messages/async/reborn/stream?last_event_id=8.1").status, 409);
  EXPECT_EQ(call("GET", "/v1/messages/async/reborn/stream?last_event_id=8.3").status, 409);
  EXPECT_EQ(call("GET", "/v1/messages/async/reborn/stream?last_event_id=8.2").status, 404);
  EXPECT_EQ(jobs.last_open, Open(8, 2));
  EXPECT_EQ(call("GET", "/v1/messages/async/reborn/stream", {}, {{"last-event-id", "8.2"}}).status, 404);
  EXPECT_EQ(jobs.last_open, Open(8, 2));
  for (const char* bad : {"8.", "8.0", ".2", "8.2.1", "8.x"}) {
    EXPECT_EQ(call("GET", "/v1/messages/async/reborn/stream", {}, {{"last-event-id", bad}}).status, 400) << bad;
  }
}

}  // namespace
}  // namespace spool
