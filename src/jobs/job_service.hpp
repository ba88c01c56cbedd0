// Starting, cancelling and removing jobs: the domain behind the async routes.
#pragma once

#include "broker/broker.hpp"
#include "engine/registry.hpp"
#include "jobs/job.hpp"
#include "jobs/jobs.hpp"

#include <chrono>
#include <map>
#include <mutex>
#include <unordered_map>

namespace spool {

// Limits of the job service.
struct JobServiceOptions {
  std::uint64_t maximum_stream_length = 100000;
  std::size_t max_active_streams = 10000;     // pending + processing on this instance; past it: overloaded
  std::size_t max_retained_streams = 100000;  // streams the broker holds, running and finished; past it: overloaded
  std::chrono::milliseconds remote_cancel_wait{15000};
  // Where engine work that answers a request runs (count_tokens): never a network thread.
  // Empty: where the caller runs (tests).
  boost::asio::any_io_executor engine_executor;
};

// Runs jobs on engines and keeps them in the broker.
class JobService final : public Jobs {
 public:
  // Registers with `broker` for remote cancels: stop the broker before destroying this.
  JobService(Broker& broker, const ModelRegistry& models, JobServiceOptions opts);
  JobService(const JobService&) = delete;
  JobService& operator=(const JobService&) = delete;

  // Creates the stream and starts its engine; returns before any token is produced.
  boost::asio::awaitable<Result<Started>> start(StartJob job) override;

  // Cancels `id` (§1.4); returns once the terminal events are in the log every instance reads.
  // A job another instance runs is cancelled there (through the broker); this waits until its
  // terminal events arrive, and answers broker_unavailable if `remote_cancel_wait` passes first.
  boost::asio::awaitable<Status> cancel(std::string id) override;

  // Cancels if active (here or, through the broker, on the instance running it), then removes
  // the stream and ends its observers everywhere (§1.5), leaving a tombstone as `how` says.
  boost::asio::awaitable<Status> remove(std::string id, Removal how) override;

  // Ends every active job (shutdown): cancelled, or failed with `reason` when given, and returns
  // once their terminal events are stored where every instance reads them (broker flush; errors
  // are ignored: the process is leaving).
  boost::asio::awaitable<void> stop_all(std::optional<Error> reason);

  // Jobs running or queued on this instance.
  std::size_t active() const override;
  // Jobs waiting behind their engine's concurrency limit on this instance.
  std::size_t queued() const override;
  // Output tokens produced on this instance so far, by model.
  std::vector<std::pair<std::string, std::uint64_t>> output_tokens() const override;

  // The reads the routes need: the API goes through the job service, never around it.
  boost::asio::awaitable<Result<StreamInfo>> info(std::string id) override { return broker_.info(std::move(id)); }
  boost::asio::awaitable<Result<std::unique_ptr<Cursor>>> open(std::string id, std::uint64_t after,
                                                               std::uint32_t incarnation,
                                                               boost::asio::any_io_executor ex) override {
    return broker_.open(std::move(id), after, incarnation, std::move(ex));
  }
  boost::asio::awaitable<Result<StreamPage>> list(ListQuery q) override { return broker_.list(std::move(q)); }
  boost::asio::awaitable<Result<std::string>> owner(std::string id) override { return broker_.owner(std::move(id)); }
  // Open observers here: in all, and of `id`.
  std::size_t observers() const override { return broker_.observers(); }
  int observers_of(const std::string& id) const override { return broker_.local_observers(id); }
  // Streams by status (this instance's view), for /metrics.
  std::vector<std::pair<StreamStatus, std::size_t>> counts() const override { return broker_.counts(); }
  // Why the broker cannot serve now, for /health.
  std::optional<std::string> broker_unready_reason() const override { return broker_.unready_reason(); }
  // The configured models.
  const ModelRegistry& models() const override { return models_; }
  // The input tokens of `req` by `model`'s own tokenizer, counted on the engine executor.
  boost::asio::awaitable<Result<std::int64_t>> count_tokens(const Model* model,
                                                            std::shared_ptr<const ChatRequest> req) override;

 private:
  // A place among the active jobs, taken before a start awaits anything; given back when it is
  // destroyed with `owner` still set (the start failed), kept when the job took it.
  struct Slot {
    JobService* service = nullptr;
    std::optional<std::string> owner;
    Slot(JobService* s, std::string o) : service(s), owner(std::move(o)) {}
    Slot(Slot&& other) noexcept : service(other.service), owner(std::move(other.owner)) { other.owner.reset(); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    Slot& operator=(Slot&&) = delete;
    ~Slot();
  };
  // A slot for a job of `owner`, or overloaded past max_active_streams or `owner_limit` (0: none).
  Result<Slot> reserve_slot(const std::string& owner, std::size_t owner_limit);
  // Why keeping one more stream is refused (max_retained_streams, or `owner_limit` of its owner).
  std::optional<Error> retention_refusal(const HeldStreams& held, std::size_t owner_limit) const;
  // Runs `job` on `writer`: counted as active (taking `slot`), logged, handed to its engine.
  std::shared_ptr<Job> launch(const StartJob& job, std::shared_ptr<StreamWriter> writer, Slot& slot);
  // Counts one job of `owner` out; call with mu_ held.
  void release_locked(const std::string& owner);
  std::shared_ptr<Job> find(const std::string& id) const;
  // Waits until the log of `id` (read from event `after`) ends, at most remote_cancel_wait;
  // false when that time ran out first.
  boost::asio::awaitable<bool> wait_until_ended(std::string id, std::uint64_t after);

  Broker& broker_;
  const ModelRegistry& models_;
  JobServiceOptions opts_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Job>> active_;
  std::size_t reserved_ = 0;  // slots taken by starts that have not recorded their job yet
  std::unordered_map<std::string, std::size_t> active_by_owner_;  // owners with active (or reserved) jobs here
  std::map<std::string, std::unique_ptr<std::atomic<std::uint64_t>>> tokens_by_model_;
};

}  // namespace spool
