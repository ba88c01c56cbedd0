#include "jobs/job.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <vector>

namespace spool {
namespace {
namespace json = boost::json;

// Keeps what a job publishes.
class LogWriter final : public StreamWriter {
 public:
  std::uint64_t publish(std::span<const NewEvent> events, std::optional<StreamStatus> s,
                        std::optional<std::string> error_message) override {
    for (const auto& e : events) log.push_back(e);
    if (s) status = *s;
    if (error_message) error = *error_message;
    return log.size();
  }
  void set_status(StreamStatus s, std::optional<std::string> error_message) override { publish({}, s, error_message); }
  void set_usage(Usage) override {}
  void set_queue_position(std::optional<int>) override {}

  // The input_json_delta events' delta objects, in order.
  std::vector<json::object> input_deltas() const {
    std::vector<json::object> out;
    for (const auto& e : log) {
      if (e.type != "content_block_delta") continue;
      json::object o = json::parse(e.json).as_object();
      if (o.at("delta").at("type") == "input_json_delta") out.push_back(o.at("delta").as_object());
    }
    return out;
  }
  std::size_t bytes() const {
    std::size_t n = 0;
    for (const auto& e : log) n += e.json.size();
    return n;
  }

  std::vector<NewEvent> log;
  StreamStatus status = StreamStatus::pending;
  std::string error;
};

std::shared_ptr<Job> make_job(const std::shared_ptr<LogWriter>& w, bool fold = false, bool upstream_signs = false) {
  JobOptions o;
  o.fold = fold;
  o.upstream_signatures = upstream_signs;
  return std::make_shared<Job>("job", "m", w, o, [] {});
}

TEST(Job, ToolInputGoesOutAsDeltasAndOnlyTheLastCarriesTheParsedInput) {
  auto w = std::make_shared<LogWriter>();
  auto job = make_job(w, true);
  job->begin(1);
  job->tool_use("lookup");
  for (const char* part : {R"({"q":)", R"("spool",)", R"("n":[1,)", "2]}"}) job->tool_input(part);
  EXPECT_EQ(w->input_deltas().size(), 3u);  // the latest is held until the next one or the block's end
  job->finish(StopReason::tool_use, std::nullopt);
  const auto deltas = w->input_deltas();
  ASSERT_EQ(deltas.size(), 4u);
  std::string joined;
  for (std::size_t i = 0; i < deltas.size(); ++i) {
    joined += deltas[i].at("partial_json").as_string();
    EXPECT_EQ(deltas[i].contains("partial_json_obj"), i + 1 == deltas.size()) << i;
  }
  EXPECT_EQ(joined, R"({"q":"spool","n":[1,2]})");
  EXPECT_EQ(json::serialize(deltas.back().at("partial_json_obj")), R"({"q":"spool","n":[1,2]})");
  EXPECT_EQ(json::serialize(job->folded().at("content").at(0).at("input")), R"({"q":"spool","n":[1,2]})");
}

// The types of the log's events, with each delta's type: "content_block_delta:text_delta".
std::vector<std::string> shape(const LogWriter& w) {
  std::vector<std::string> out;
  for (const auto& e : w.log) {
    std::string t = e.type;
    if (t == "content_block_delta") t += ":" + std::string(json::parse(e.json).at("delta").at("type").as_string());
    out.push_back(t);
  }
  return out;
}

// A job's own signature is in the block's start (§3.2) and its signature_delta; an upstream's is
// known only at the end, so with an upstream that signs the start has "" (as Anthropic's): a
// client that joins the two (LangChain) gets the signature once.
TEST(Job, AThinkingBlockEndsWithItsSignatureAsAnthropicSendsIt) {
  for (const bool upstream_signed : {false, true}) {
    auto w = std::make_shared<LogWriter>();
    auto job = make_job(w, true, upstream_signed);
    job->begin(1);
    job->thinking("hm");
    if (upstream_signed) job->thinking_signature("EqQBupstream");
    job->text("hi");
    job->finish(StopReason::end_turn, std::nullopt);
    EXPECT_EQ(shape(*w), (std::vector<std::string>{
                             "message_start", "content_block_start", "content_block_delta:thinking_delta",
                             "content_block_delta:signature_delta", "content_block_stop", "content_block_start",
                             "content_block_delta:text_delta", "content_block_stop", "message_delta", "message_stop"}));
    const json::value start = json::parse(w->log[1].json);
    const json::value sig = json::parse(w->log[3].json);
    const json::string& given = sig.at("delta").at("signature").as_string();
    if (upstream_signed) {
      EXPECT_EQ(given, "EqQBupstream");
      EXPECT_EQ(start.at("content_block").at("signature").as_string(), "");
    } else {
      EXPECT_EQ(given, start.at("content_block").at("signature").as_string());
    }
    EXPECT_EQ(sig.at("index"), start.at("index"));
    EXPECT_EQ(job->folded().at("content").at(0).at("signature").as_string(), given);
  }
}

TEST(Job, OneFragmentKeepsItsShape) {
  auto w = std::make_shared<LogWriter>();
  auto job = make_job(w);
  job->begin(1);
  job->tool_use("t");
  job->tool_input("{}");
  job->finish(StopReason::tool_use, std::nullopt);
  const auto deltas = w->input_deltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(json::serialize(deltas[0]), R"({"type":"input_json_delta","partial_json":"{}","partial_json_obj":{}})");
}

TEST(Job, ManySmallFragmentsCostLinearBytes) {
  auto w = std::make_shared<LogWriter>();
  auto job = make_job(w);
  job->begin(1);
  job->tool_use("t");
  std::string input = R"({"data":")" + std::string(54 * 1024, 'x') + R"("})";
  const std::size_t step = input.size() / 4000 + 1;
  for (std::size_t i = 0; i < input.size(); i += step) job->tool_input(input.substr(i, step));
  job->finish(StopReason::tool_use, std::nullopt);
  EXPECT_LT(w->bytes(), 20 * input.size());  // was ~2000x: each delta repeated the object so far
}

TEST(Job, CancelAndFailureKeepTheHeldFragment) {
  auto w = std::make_shared<LogWriter>();
  auto job = make_job(w);
  job->begin(1);
  job->tool_use("t");
  job->tool_input(R"({"a":)");
  job->tool_input("1");
  job->cancel();
  auto deltas = w->input_deltas();
  ASSERT_EQ(deltas.size(), 2u);
  EXPECT_EQ(json::serialize(deltas[1].at("partial_json_obj")), R"({"a":1})");

  auto w2 = std::make_shared<LogWriter>();
  auto failed = make_job(w2);
  failed->begin(1);
  failed->tool_use("t");
  failed->tool_input(R"({"a":)");
  failed->fail(make_error(Errc::upstream, "upstream cut \xFF off"));
  deltas = w2->input_deltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_FALSE(deltas[0].contains("partial_json_obj"));
  EXPECT_EQ(w2->log.back().type, "error");
  EXPECT_EQ(w2->error, "upstream cut \xEF\xBF\xBD off");  // foreign bytes reach the status as UTF-8
}

}  // namespace
}  // namespace spool
