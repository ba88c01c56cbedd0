#include "stream/job_service.hpp"

#include "core/ids.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace spool {
namespace asio = boost::asio;

JobService::JobService(Broker& broker, JobServiceOptions opts) : broker_(broker), opts_(opts) {
  broker_.on_remote_cancel([this](const std::string& id) {
    if (auto j = find(id)) j->cancel();
  });
}

std::shared_ptr<Job> JobService::find(const std::string& id) const {
  std::lock_guard lk(mu_);
  auto it = active_.find(id);
  return it == active_.end() ? nullptr : it->second;
}

asio::awaitable<Result<Started>> JobService::start(StartJob job) {
  std::string idem_slot;
  if (!job.idempotency_key.empty()) {
    idem_slot = job.owner + '\n' + job.idempotency_key;
    std::optional<IdempotencyEntry> prior;
    {
      std::lock_guard lk(mu_);
      if (auto it = idempotency_.find(idem_slot); it != idempotency_.end()) prior = it->second;
    }
    if (prior) {
      auto info = co_await broker_.info(prior->id);
      if (info.ok()) {
        if (prior->digest != job.body_digest) {
          co_return make_error(Errc::conflict, "Idempotency-Key was already used with a different request");
        }
        co_return Started{prior->id, true, nullptr};
      }
      std::lock_guard lk(mu_);
      idempotency_.erase(idem_slot);  // its stream is gone: the key is free again
    }
  }
  if (active() >= opts_.max_active_streams) {
    co_return make_error(Errc::overloaded, "Too many active streams (limit " +
                                               std::to_string(opts_.max_active_streams) + "); try again later");
  }
  if (job.id.empty()) job.id = uuid4();
  StreamSpec spec{job.id, job.model->name, job.request->message_count, job.request->thinking, job.owner};
  auto writer = co_await broker_.create(std::move(spec));
  if (!writer) co_return writer.error();

  const std::string id = job.id;
  auto j = std::make_shared<Job>(id, job.model->name, std::move(writer.value()),
                                 JobOptions{opts_.maximum_stream_length, job.fold}, [this, id] {
                                   std::lock_guard lk(mu_);
                                   active_.erase(id);
                                 });
  bool prune = false;
  {
    std::lock_guard lk(mu_);
    active_[id] = j;
    if (!idem_slot.empty()) {
      idempotency_[idem_slot] = IdempotencyEntry{job.body_digest, id};
      prune = idempotency_.size() >= 2 * idempotency_kept_ + 1024;
    }
  }
  if (prune) co_await prune_idempotency();
  j->attach(job.model->impl->start(job.request, j));
  co_return Started{id, false, j};
}

asio::awaitable<void> JobService::prune_idempotency() {
  std::vector<std::pair<std::string, std::string>> entries;  // slot, id
  {
    std::lock_guard lk(mu_);
    entries.reserve(idempotency_.size());
    for (const auto& [slot, e] : idempotency_) entries.emplace_back(slot, e.id);
  }
  std::vector<std::string> gone;
  for (auto& [slot, id] : entries) {
    auto info = co_await broker_.info(id);
    if (!info && info.error().code == Errc::not_found) gone.push_back(std::move(slot));
  }
  std::lock_guard lk(mu_);
  for (const auto& slot : gone) idempotency_.erase(slot);
  idempotency_kept_ = idempotency_.size();
}

asio::awaitable<Status> JobService::cancel(std::string id) {
  if (auto j = find(id)) {  // running here: stop it, whatever the broker's state
    j->cancel();
    co_return co_await broker_.flush(id);
  }
  auto info = co_await broker_.info(id);
  if (!info) co_return info.error();
  if (is_terminal(info->status)) co_return Ok{};
  auto sent = co_await broker_.request_cancel(id);
  if (!sent) co_return sent.error();
  if (*sent) co_await wait_until_ended(id, info->events);
  co_return Ok{};
}

asio::awaitable<void> JobService::wait_until_ended(std::string id, std::uint64_t after) {
  auto ex = co_await asio::this_coro::executor;
  auto cursor = co_await broker_.open(id, after, ex);
  if (!cursor) co_return;
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
}

asio::awaitable<Status> JobService::remove(std::string id) {
  if (auto j = find(id)) {
    j->cancel();
    co_await broker_.flush(id);
  }
  co_return co_await broker_.remove(std::move(id));
}

asio::awaitable<void> JobService::cancel_all() {
  std::vector<std::pair<std::string, std::shared_ptr<Job>>> jobs;
  {
    std::lock_guard lk(mu_);
    for (auto& [id, j] : active_) jobs.emplace_back(id, j);
  }
  for (auto& [id, j] : jobs) j->cancel();
  for (auto& [id, j] : jobs) co_await broker_.flush(id);
}

std::size_t JobService::active() const {
  std::lock_guard lk(mu_);
  return active_.size();
}

}  // namespace spool
