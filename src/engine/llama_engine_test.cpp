#include "engine/llama_engine.hpp"

#include "tiny_gguf.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>

#include <unistd.h>
#include <mutex>

namespace spool {
namespace {

// Records what the engine produces; thread-safe, like a Job.
class RecordingSink final : public EngineSink {
 public:
  void queued(std::optional<int> p) override {
    std::lock_guard lk(mu_);
    if (p) max_queue_position = std::max(max_queue_position, *p);
  }
  void begin(std::int64_t n) override {
    std::lock_guard lk(mu_);
    input_tokens = n;
    began_at = std::chrono::steady_clock::now();
  }
  void thinking(std::string_view d) override {
    std::lock_guard lk(mu_);
    thought += d;
  }
  void thinking_signature(std::string_view /*signature*/) override {}
  void text(std::string_view d) override {
    std::lock_guard lk(mu_);
    reply += d;
    ++deltas;
  }
  void tool_use(std::string_view) override {}
  void tool_input(std::string_view) override {}
  void output_tokens(std::int64_t n) override {
    std::lock_guard lk(mu_);
    produced = n;
    cv_.notify_all();
  }
  void finish(StopReason r, std::optional<std::string> seq) override {
    std::lock_guard lk(mu_);
    reason = r;
    stop_sequence = std::move(seq);
    done = true;
    cv_.notify_all();
  }
  void fail(Error e) override {
    std::lock_guard lk(mu_);
    error = std::move(e);
    done = true;
    cv_.notify_all();
  }
  bool stopped() const override { return stop_flag.load(); }

  bool wait(std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, limit, [&] { return done; });
  }
  // Waits until at least `n` tokens were produced (or the run ended); false after `limit`.
  bool wait_produced(std::int64_t n, std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, limit, [&] { return produced >= n || done; }) && produced >= n;
  }

  std::atomic<bool> stop_flag{false};
  int max_queue_position = 0;
  std::int64_t input_tokens = -1;
  std::atomic<std::int64_t> produced{0};
  int deltas = 0;
  std::string reply, thought;
  std::optional<StopReason> reason;
  std::optional<std::string> stop_sequence;
  std::optional<Error> error;
  bool done = false;
  std::chrono::steady_clock::time_point began_at;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

std::shared_ptr<const ChatRequest> request(std::string text, std::int64_t max_tokens,
                                           std::optional<std::int64_t> seed = 7) {
  auto r = std::make_shared<ChatRequest>();
  ChatMessage m;
  m.role = "user";
  m.content.push_back(ContentBlock{"text", std::move(text), "", "", {}});
  r->messages.push_back(std::move(m));
  r->max_tokens = max_tokens;
  r->seed = seed;
  r->message_count = 1;
  return r;
}

class LlamaEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() / ("spool-llama-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    model_ = (dir_ / "tiny.gguf").string();
    testing::TinyGgufOptions o;
    o.vocab_path = std::string(SPOOL_LLAMA_VOCAB_DIR) + "/ggml-vocab-phi-3.gguf";
    o.out_path = model_;
    spool::testing::write_tiny_gguf(o);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  static LlamaOptions options(int parallel) {
    LlamaOptions o;
    o.model_path = model_;
    o.parallel = parallel;
    o.context = 256;
    o.threads = 2;
    return o;
  }

  static inline std::filesystem::path dir_;
  static inline std::string model_;
};

TEST_F(LlamaEngineTest, GeneratesUpToMaxTokensWithRealCounts) {
  LlamaEngine engine(options(2));
  ASSERT_FALSE(engine.wait_loaded().has_value());
  auto sink = std::make_shared<RecordingSink>();
  auto run = engine.start(request("hello there", 12), sink);
  ASSERT_TRUE(sink->wait());
  ASSERT_FALSE(sink->error) << sink->error->explanation;
  EXPECT_GT(sink->input_tokens, 2);
  EXPECT_LE(sink->produced, 12);
  EXPECT_GT(sink->produced, 0);
  ASSERT_TRUE(sink->reason.has_value());
  // Cut at max_tokens exactly, or ended by the model itself before it.
  EXPECT_EQ(*sink->reason == StopReason::max_tokens, sink->produced == 12) << "produced " << sink->produced;
  auto counted = engine.count_tokens(*request("hello there", 12));
  ASSERT_TRUE(counted.ok());
  EXPECT_EQ(*counted, sink->input_tokens);
}

TEST_F(LlamaEngineTest, SameSeedSameReply) {
  LlamaEngine engine(options(2));
  auto a = std::make_shared<RecordingSink>();
  auto b = std::make_shared<RecordingSink>();
  engine.start(request("the same prompt", 16, 123), a);
  engine.start(request("the same prompt", 16, 123), b);  // decoded in the same batch
  ASSERT_TRUE(a->wait());
  ASSERT_TRUE(b->wait());
  EXPECT_EQ(a->reply + a->thought, b->reply + b->thought);
  EXPECT_EQ(a->produced, b->produced);
}

TEST_F(LlamaEngineTest, JobsBeyondParallelWaitInQueue) {
  LlamaEngine engine(options(1));
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (int i = 0; i < 3; ++i) {
    sinks.push_back(std::make_shared<RecordingSink>());
    engine.start(request("queue me " + std::to_string(i), 8), sinks.back());
  }
  for (auto& s : sinks) ASSERT_TRUE(s->wait());
  EXPECT_GE(sinks[2]->max_queue_position, 1);  // it waited behind the others
  for (auto& s : sinks) EXPECT_FALSE(s->error);
}

TEST_F(LlamaEngineTest, CancelStopsBeforeTheNextToken) {
  LlamaEngine engine(options(1));
  auto sink = std::make_shared<RecordingSink>();
  auto run = engine.start(request("go on for a long time", 100000), sink);
  ASSERT_TRUE(sink->wait_produced(3)) << "the run never produced 3 tokens";
  sink->stop_flag = true;
  run->cancel();
  const std::int64_t at = sink->produced;
  // With one sequence, the next job runs only once the cancelled one has given it up: after
  // that, the cancelled run can produce nothing more.
  auto next = std::make_shared<RecordingSink>();
  engine.start(request("next", 4), next);
  ASSERT_TRUE(next->wait());
  EXPECT_FALSE(next->error);
  EXPECT_LE(sink->produced, at + 1);  // at most the token already being decoded
  EXPECT_FALSE(sink->done);           // cancelled runs end through the job, not the engine
}

TEST_F(LlamaEngineTest, MissingOrNonGgufModelFailsJobsClearly) {
  LlamaOptions o = options(1);
  o.model_path = (dir_ / "nope.gguf").string();
  LlamaEngine missing(o);
  auto s1 = std::make_shared<RecordingSink>();
  missing.start(request("x", 4), s1);
  ASSERT_TRUE(s1->wait());
  ASSERT_TRUE(s1->error);
  EXPECT_NE(s1->error->explanation.find("not found"), std::string::npos) << s1->error->explanation;

  const auto bogus = dir_ / "bogus.gguf";
  { std::ofstream(bogus) << "not a model"; }
  o.model_path = bogus.string();
  LlamaEngine not_gguf(o);
  auto s2 = std::make_shared<RecordingSink>();
  not_gguf.start(request("x", 4), s2);
  ASSERT_TRUE(s2->wait());
  ASSERT_TRUE(s2->error);
  EXPECT_NE(s2->error->explanation.find("not a GGUF"), std::string::npos) << s2->error->explanation;
}

TEST_F(LlamaEngineTest, ImageBlocksAreAClearError) {
  LlamaEngine engine(options(1));
  auto r = std::make_shared<ChatRequest>(*request("look", 4));
  r->messages[0].content.push_back(ContentBlock{"image", "", "", "", {}});
  auto sink = std::make_shared<RecordingSink>();
  engine.start(r, sink);
  ASSERT_TRUE(sink->wait());
  ASSERT_TRUE(sink->error);
  EXPECT_NE(sink->error->explanation.find("image"), std::string::npos);
}

TEST_F(LlamaEngineTest, OutputFormatConstrainsTheRandomModelToTheSchema) {
  LlamaEngine engine(options(2));
  const auto schema = boost::json::parse(R"({"type":"object","properties":{
      "ok":{"type":"boolean"},"color":{"enum":["red","green"]},"n":{"type":"integer"}},
      "required":["ok","color","n"],"additionalProperties":false})");
  const OutputFormat format{OutputFormat::Kind::json_schema, schema.as_object(), {}, std::nullopt};
  ASSERT_TRUE(engine.check_output_format(format).ok());
  for (double temperature : {0.0, 1.0}) {
    auto r = std::make_shared<ChatRequest>(*request("give me json", 200));
    r->output_format = format;
    r->temperature = temperature;
    auto sink = std::make_shared<RecordingSink>();
    engine.start(r, sink);
    ASSERT_TRUE(sink->wait());
    ASSERT_FALSE(sink->error) << sink->error->explanation;
    ASSERT_EQ(sink->reason, StopReason::end_turn) << sink->reply;  // the grammar ends the reply, not max_tokens
    boost::system::error_code ec;
    const auto v = boost::json::parse(sink->reply, ec);
    ASSERT_FALSE(ec) << sink->reply;
    ASSERT_TRUE(v.is_object()) << sink->reply;
    EXPECT_TRUE(v.at("ok").is_bool()) << sink->reply;
    EXPECT_TRUE(v.at("color") == "red" || v.at("color") == "green") << sink->reply;
    EXPECT_TRUE(v.at("n").is_int64()) << sink->reply;
    EXPECT_EQ(v.as_object().size(), 3u) << sink->reply;
  }
}

TEST_F(LlamaEngineTest, ASchemaWithoutAGrammarIsRefused) {
  LlamaEngine engine(options(1));
  const auto schema = boost::json::parse(R"({"type":"string","pattern":"^(ab$"})");
  auto ok =
      engine.check_output_format(OutputFormat{OutputFormat::Kind::json_schema, schema.as_object(), {}, std::nullopt});
  ASSERT_FALSE(ok.ok());
  EXPECT_EQ(ok.error().code, Errc::invalid_request);
  EXPECT_NE(ok.error().explanation.find("grammar"), std::string::npos) << ok.error().explanation;
}

}  // namespace
}  // namespace spool
