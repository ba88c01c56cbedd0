// What the API asks of the job layer: the one door between the routes and everything below.
#pragma once

#include "broker/broker.hpp"
#include "engine/registry.hpp"
#include "jobs/job.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace spool {

// A request to start one job.
struct StartJob {
  std::string id;  // empty: a UUID4 is generated
  std::shared_ptr<const ChatRequest> request;
  const Model* model = nullptr;
  std::string owner;
  std::size_t owner_active_limit = 0;    // most active jobs of `owner` (0: no limit of its own)
  std::size_t owner_retained_limit = 0;  // most streams of `owner` the broker holds (0: no limit of its own)
  std::string request_id;                // of the HTTP request that starts it (logs)
  std::string idempotency_key;           // empty: none
  std::string body_digest;               // identifies the request for idempotency
  bool fold = false;                     // keep the folded message (synchronous replies)
};

// What start() did.
struct Started {
  std::string id;
  bool replayed = false;     // an earlier job with the same idempotency key and body
  std::shared_ptr<Job> job;  // null when replayed
};

// The job layer as the routes see it (JobService; a fake in the router's tests).
class Jobs {
 public:
  virtual ~Jobs() = default;
  // Creates the stream and starts its engine; returns before any token is produced.
  virtual boost::asio::awaitable<Result<Started>> start(StartJob job) = 0;
  // Cancels `id` (§1.4): 200-worthy only once it is cancelled (conflict when it ended otherwise).
  virtual boost::asio::awaitable<Status> cancel(std::string id) = 0;
  // Cancels if active, then removes the stream and ends its observers everywhere (§1.5), leaving
  // a tombstone as `how` says.
  virtual boost::asio::awaitable<Status> remove(std::string id, Removal how) = 0;
  // A stream's record, or not_found.
  virtual boost::asio::awaitable<Result<StreamInfo>> info(std::string id) = 0;
  // A cursor on `id` after event `after` of incarnation `incarnation` (0: the current one), read
  // on `ex`; or not_found, or conflict when `after` belongs to another incarnation (Broker::open).
  virtual boost::asio::awaitable<Result<std::unique_ptr<Cursor>>> open(std::string id, std::uint64_t after,
                                                                       std::uint32_t incarnation,
                                                                       boost::asio::any_io_executor ex) = 0;
  // One page of the streams `q` asks for.
  virtual boost::asio::awaitable<Result<StreamPage>> list(ListQuery q) = 0;
  // Who created `id` (stream scoping), or not_found.
  virtual boost::asio::awaitable<Result<std::string>> owner(std::string id) = 0;
  // The input tokens of `req` by `model`'s own tokenizer, counted off the network threads.
  virtual boost::asio::awaitable<Result<std::int64_t>> count_tokens(const Model* model,
                                                                    std::shared_ptr<const ChatRequest> req) = 0;
  // Open observers here: in all, and of `id`.
  virtual std::size_t observers() const = 0;
  virtual int observers_of(const std::string& id) const = 0;
  // Streams by status (this instance's view), for /metrics.
  virtual std::vector<std::pair<StreamStatus, std::size_t>> counts() const = 0;
  // Why the broker cannot serve now (for /health), or nullopt.
  virtual std::optional<std::string> broker_unready_reason() const = 0;
  // The configured models.
  virtual const ModelRegistry& models() const = 0;
  // Jobs running or queued here; those waiting behind their engine's limit; tokens produced by model.
  virtual std::size_t active() const = 0;
  virtual std::size_t queued() const = 0;
  virtual std::vector<std::pair<std::string, std::uint64_t>> output_tokens() const = 0;
};

}  // namespace spool
