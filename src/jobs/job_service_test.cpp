// The job service over the memory broker and the mock engine: starts, limits, cancels.
#include "jobs/job_service.hpp"

#include "broker/memory_broker.hpp"
#include "engine/mock_engine.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <stdexcept>

namespace spool {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// An engine whose start() fails the way a process out of file descriptors does.
class ThrowingEngine final : public Engine {
 public:
  std::shared_ptr<EngineRun> start(std::shared_ptr<const ChatRequest>, std::shared_ptr<EngineSink>) override {
    throw std::system_error(std::make_error_code(std::errc::too_many_files_open), "eventfd");
  }
  Result<std::int64_t> count_tokens(const ChatRequest&) override { return std::int64_t{0}; }
};

class JobServiceTest : public ::testing::Test {
 protected:
  JobServiceTest() {
    models.add(Model{"slow", "mock", std::make_shared<MockEngine>(io.get_executor(), MockOptions{1000ms})});
    models.add(Model{"fast", "mock", std::make_shared<MockEngine>(io.get_executor(), MockOptions{0ms})});
    models.add(Model{"broken", "mock", std::make_shared<ThrowingEngine>()});
  }
  ~JobServiceTest() override { broker.stop(); }

  template <class T>
  T run(asio::awaitable<T> a) {
    auto fut = asio::co_spawn(io, std::move(a), asio::use_future);
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (fut.wait_for(0s) != std::future_status::ready && std::chrono::steady_clock::now() < deadline) {
      io.run_one_for(10ms);
    }
    EXPECT_EQ(fut.wait_for(0s), std::future_status::ready) << "did not finish within 5 s";
    return fut.get();
  }
  StartJob job(const std::string& model, std::string id = {}) {
    auto req = std::make_shared<ChatRequest>();
    ChatMessage m;
    m.role = "user";
    m.content.push_back(ContentBlock{"text", "one two three", "", "", {}});
    req->messages.push_back(std::move(m));
    req->message_count = 1;
    StartJob j;
    j.id = std::move(id);
    j.request = req;
    j.model = *models.resolve(model);
    return j;
  }
  StreamStatus status_of(const std::string& id) { return run(service.info(id))->status; }

  asio::io_context io;
  ModelRegistry models;
  MemoryBroker broker{io.get_executor(), MemoryBrokerOptions{0s, 1000ms, nullptr}};
  JobServiceOptions opts = [] {
    JobServiceOptions o;
    o.max_active_streams = 2;
    o.max_retained_streams = 3;
    return o;
  }();
  JobService service{broker, models, opts};
};

TEST_F(JobServiceTest, ACancelOfARunningJobEndsItCancelled) {
  ASSERT_TRUE(run(service.start(job("slow", "a"))).ok());
  EXPECT_TRUE(run(service.cancel("a")).ok());
  EXPECT_EQ(status_of("a"), StreamStatus::cancelled);
  EXPECT_EQ(service.active(), 0u);
}

TEST_F(JobServiceTest, ACancelOfAFinishedJobChangesNothing) {
  ASSERT_TRUE(run(service.start(job("fast", "done"))).ok());
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (status_of("done") != StreamStatus::completed && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(10ms);  // the mock (no delay) finishes at once
  }
  ASSERT_EQ(status_of("done"), StreamStatus::completed);
  EXPECT_TRUE(run(service.cancel("done")).ok());
  EXPECT_EQ(status_of("done"), StreamStatus::completed);
}

TEST_F(JobServiceTest, ActiveAndRetainedLimitsAreOverloadedAndFreeAgain) {
  ASSERT_TRUE(run(service.start(job("slow", "1"))).ok());
  ASSERT_TRUE(run(service.start(job("slow", "2"))).ok());
  auto third = run(service.start(job("slow", "3")));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, Errc::overloaded);
  EXPECT_EQ(run(service.info("3")).error().code, Errc::not_found) << "a refused start keeps nothing";
  ASSERT_TRUE(run(service.cancel("1")).ok());
  ASSERT_TRUE(run(service.start(job("slow", "3"))).ok()) << "a slot is free again";
  ASSERT_TRUE(run(service.cancel("2")).ok());
  auto fourth = run(service.start(job("slow", "4")));
  ASSERT_FALSE(fourth.ok()) << "three streams kept: the retained limit";
  EXPECT_NE(fourth.error().explanation.find("kept"), std::string::npos) << fourth.error().explanation;
  ASSERT_TRUE(run(service.remove("1", Removal::tombstone)).ok());
  EXPECT_TRUE(run(service.start(job("slow", "4"))).ok());
}

TEST_F(JobServiceTest, AnEngineThatCannotStartEndsTheJobWithAnError) {
  auto started = run(service.start(job("broken", "b")));
  ASSERT_TRUE(started.ok()) << "engine failures are never reported by the start (§1.1)";
  auto info = run(service.info("b"));
  EXPECT_EQ(info->status, StreamStatus::error);
  ASSERT_TRUE(info->error_message.has_value());
  EXPECT_NE(info->error_message->find("could not start"), std::string::npos) << *info->error_message;
  EXPECT_EQ(service.active(), 0u) << "its slot is released";
}

}  // namespace
}  // namespace spool
