#include "jobs/job_service.hpp"

#include "core/ids.hpp"
#include "core/log.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace spool {
namespace asio = boost::asio;

JobService::JobService(Broker& broker, const ModelRegistry& models, JobServiceOptions opts)
    : broker_(broker), models_(models), opts_(std::move(opts)) {
  broker_.on_remote_cancel([this](const std::string& id) {
    if (auto j = find(id)) j->cancel();
  });
}

std::shared_ptr<Job> JobService::find(const std::string& id) const {
  std::lock_guard lk(mu_);
  auto it = active_.find(id);
  return it == active_.end() ? nullptr : it->second;
}

namespace {

// The answer to a repeated Idempotency-Key: the earlier job, if the request is the same.
Result<Started> replay(const KeyedJob& prior, const std::string& digest) {
  if (prior.digest != digest) {
    return make_error(Errc::conflict, "Idempotency-Key was already used with a different request");
  }
  return Started{prior.id, true, nullptr};
}

}  // namespace

asio::awaitable<Result<Started>> JobService::start(StartJob job) {
  std::string key;
  if (!job.idempotency_key.empty()) {
    key = job.owner + '\n' + job.idempotency_key;
    auto prior = co_await broker_.find_key(key);
    if (!prior) co_return prior.error();
    if (*prior) co_return replay(**prior, job.body_digest);
  }
  // The slot is taken now, before anything is awaited: concurrent starts cannot all pass the check.
  auto slot = reserve_slot(job.owner, job.owner_active_limit);
  if (!slot) co_return slot.error();
  HeldStreams limits{opts_.max_retained_streams, job.owner_retained_limit};
  auto held = co_await broker_.held(job.owner, limits);
  if (!held) co_return held.error();
  if (auto refused = retention_refusal(*held, job.owner_retained_limit)) co_return *refused;
  if (job.id.empty()) job.id = uuid4();
  StreamSpec spec{job.id, job.model->name, job.request->message_count, job.request->thinking, job.owner};
  auto writer = co_await broker_.create(std::move(spec));
  if (!writer) co_return writer.error();
  const std::string id = job.id;
  if (!key.empty()) {
    // Another request with the same key may have started meanwhile (on any instance): the first
    // to bind the key wins and this stream, never started, goes.
    KeyedJob mine{id, job.body_digest};
    auto held = co_await broker_.claim_key(key, std::move(mine));
    if (!held || *held) {
      co_await broker_.remove(id, Removal::tombstone);  // (its id may have had a tombstone, now taken)
      if (!held) co_return held.error();
      co_return replay(**held, job.body_digest);
    }
  }

  auto j = launch(job, std::move(writer.value()), *slot);
  co_return Started{id, false, j};
}

std::optional<Error> JobService::retention_refusal(const HeldStreams& held, std::size_t owner_limit) const {
  if (held.total >= opts_.max_retained_streams) {
    return make_error(Errc::overloaded, "Too many streams kept (limit " + std::to_string(opts_.max_retained_streams) +
                                            "); delete finished streams or wait for them to expire");
  }
  if (owner_limit > 0 && held.of_owner >= owner_limit) {
    return make_error(Errc::overloaded, "Too many streams kept for this secret (limit " + std::to_string(owner_limit) +
                                            "); delete finished streams or wait for them to expire");
  }
  return std::nullopt;
}

std::shared_ptr<Job> JobService::launch(const StartJob& job, std::shared_ptr<StreamWriter> writer, Slot& slot) {
  const std::string& id = job.id;
  std::atomic<std::uint64_t>* tokens = nullptr;
  {
    std::lock_guard lk(mu_);
    auto& counter = tokens_by_model_[job.model->name];
    if (!counter) counter = std::make_unique<std::atomic<std::uint64_t>>(0);
    tokens = counter.get();
  }
  auto self = std::make_shared<std::weak_ptr<Job>>();  // for the end-of-job log line
  auto on_end = [this, id, owner = job.owner, request_id = job.request_id, self] {
    {
      std::lock_guard lk(mu_);
      active_.erase(id);
      release_locked(owner);
    }
    const auto j = self->lock();
    const auto failure = j ? j->failure() : std::nullopt;
    log_event(failure ? spdlog::level::warn : spdlog::level::info, failure ? "job failed" : "job ended",
              {{"message_id", id}, {"request_id", request_id}, {"error", failure ? failure->explanation : ""}});
  };
  auto j = std::make_shared<Job>(
      id, job.model->name, std::move(writer),
      JobOptions{opts_.maximum_stream_length, job.fold, job.model->impl->signs_thinking(), tokens}, std::move(on_end));
  *self = j;
  log_event(spdlog::level::info, "job started",
            {{"message_id", id},
             {"request_id", job.request_id},
             {"model", job.model->name},
             {"owner", job.owner},
             {"traceparent", job.request->traceparent}});
  {
    std::lock_guard lk(mu_);
    active_[id] = j;
    --reserved_;  // the slot is now the job's: on_end releases it
    slot.owner.reset();
  }
  std::shared_ptr<EngineRun> run;
  try {
    run = job.model->impl->start(job.request, j);
  } catch (const std::exception& e) {  // no thread, timer or descriptor for it, say: the job ends, never stays pending
    j->fail(make_error(Errc::internal, std::string("The engine could not start the job: ") + e.what()));
  }
  if (run) j->attach(std::move(run));
  return j;
}

namespace {

// The answer to a cancel of stream `id`, active when the cancel arrived, that then ended as
// `status`: 200 only when that is cancelled (§1.4).
Status cancel_outcome(const std::string& id, StreamStatus status, const std::optional<std::string>& error_message) {
  if (status == StreamStatus::cancelled) return Ok{};
  std::string why = "Stream with message_id " + id + " ended as " + std::string(to_string(status));
  if (error_message) why += " (" + *error_message + ")";
  return make_error(Errc::conflict, why + " before the cancel took effect");
}

}  // namespace

asio::awaitable<Status> JobService::cancel(std::string id) {
  if (auto j = find(id)) {                   // running here: stop it, whatever the broker's state
    const StreamStatus ended = j->cancel();  // the job's own word: the broker may not have it yet
    auto stored = co_await broker_.flush(id);
    if (!stored) co_return stored;
    const auto failure = j->failure();
    co_return cancel_outcome(id, ended, failure ? std::optional(failure->explanation) : std::nullopt);
  }
  auto info = co_await broker_.info(id);
  if (!info) co_return info.error();
  if (is_terminal(info->status)) co_return Ok{};  // already over when the cancel arrived: nothing changes
  auto sent = co_await broker_.request_cancel(id);
  if (!sent) co_return sent.error();
  if (!*sent) co_return Ok{};
  if (co_await wait_until_ended(id, info->events)) {
    auto ended = co_await broker_.info(id);
    if (!ended) co_return ended.error().code == Errc::not_found ? Status{Ok{}} : Status{ended.error()};
    co_return cancel_outcome(id, ended->status, ended->error_message);
  }
  co_return make_error(Errc::broker_unavailable,
                       "The instance running stream " + id + " did not confirm the cancel within " +
                           std::to_string(opts_.remote_cancel_wait.count() / 1000) +
                           " s; the request is stored and applies when that instance sees it (or the stream "
                           "ends as \"instance lost\")");
}

asio::awaitable<bool> JobService::wait_until_ended(std::string id, std::uint64_t after) {
  auto ex = co_await asio::this_coro::executor;
  auto cursor = co_await broker_.open(id, after, 0, ex);
  if (!cursor) co_return cursor.error().code == Errc::not_found;  // deleted meanwhile: nothing left to cancel
  Cursor& c = **cursor;
  asio::steady_timer deadline(ex);
  deadline.expires_after(opts_.remote_cancel_wait);
  bool expired = false;
  deadline.async_wait([&c, &expired](boost::system::error_code ec) {
    if (ec) return;
    expired = true;
    c.interrupt();
  });
  for (;;) {
    ReadChunk chunk = co_await c.next();
    if (chunk.kind == ReadChunk::Kind::end || expired) break;
  }
  deadline.cancel();
  // The timer's handler (cancelled) still refers to `c`: let it run before the cursor goes.
  co_await asio::post(ex, asio::use_awaitable);
  co_return !expired;
}

asio::awaitable<Status> JobService::remove(std::string id, Removal how) {
  if (auto j = find(id)) {
    j->cancel();
    co_await broker_.flush(id);
  }
  co_return co_await broker_.remove(std::move(id), how);
}

asio::awaitable<void> JobService::stop_all(std::optional<Error> reason) {
  std::vector<std::pair<std::string, std::shared_ptr<Job>>> jobs;
  {
    std::lock_guard lk(mu_);
    for (auto& [id, j] : active_) jobs.emplace_back(id, j);
  }
  for (auto& [id, j] : jobs) {
    if (reason) {
      j->fail(*reason);
    } else {
      j->cancel();
    }
  }
  for (auto& [id, j] : jobs) co_await broker_.flush(id);
}

Result<JobService::Slot> JobService::reserve_slot(const std::string& owner, std::size_t owner_limit) {
  std::lock_guard lk(mu_);
  if (active_.size() + reserved_ >= opts_.max_active_streams) {
    return make_error(Errc::overloaded, "Too many active streams (limit " + std::to_string(opts_.max_active_streams) +
                                            "); try again later");
  }
  if (owner_limit > 0) {
    auto it = active_by_owner_.find(owner);
    if (it != active_by_owner_.end() && it->second >= owner_limit) {
      return make_error(Errc::overloaded, "Too many active streams for this secret (limit " +
                                              std::to_string(owner_limit) + "); try again later");
    }
  }
  ++reserved_;
  ++active_by_owner_[owner];
  return Slot{this, owner};
}

JobService::Slot::~Slot() {
  if (!owner) return;
  std::lock_guard lk(service->mu_);
  --service->reserved_;
  service->release_locked(*owner);
}

void JobService::release_locked(const std::string& owner) {
  if (auto it = active_by_owner_.find(owner); it != active_by_owner_.end() && --it->second == 0) {
    active_by_owner_.erase(it);
  }
}

asio::awaitable<Result<std::int64_t>> JobService::count_tokens(const Model* model,
                                                               std::shared_ptr<const ChatRequest> req) {
  if (!opts_.engine_executor) co_return model->impl->count_tokens(*req);
  auto home = co_await asio::this_coro::executor;
  co_await asio::post(opts_.engine_executor, asio::use_awaitable);
  auto n = model->impl->count_tokens(*req);
  co_await asio::post(home, asio::use_awaitable);
  co_return n;
}

std::size_t JobService::active() const {
  std::lock_guard lk(mu_);
  return active_.size();
}

std::size_t JobService::queued() const {
  std::vector<std::shared_ptr<Job>> jobs;
  {
    std::lock_guard lk(mu_);
    jobs.reserve(active_.size());
    for (const auto& [id, j] : active_) jobs.push_back(j);
  }
  return static_cast<std::size_t>(
      std::count_if(jobs.begin(), jobs.end(), [](const auto& j) { return j->waiting_in_queue(); }));
}

std::vector<std::pair<std::string, std::uint64_t>> JobService::output_tokens() const {
  std::lock_guard lk(mu_);
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const auto& [model, n] : tokens_by_model_) out.emplace_back(model, n->load(std::memory_order_relaxed));
  return out;
}

}  // namespace spool
