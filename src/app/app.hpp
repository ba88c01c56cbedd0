// `spool serve`: the server's parts, built in order from a Config and torn down in reverse.
#pragma once

#include "api/metrics.hpp"
#include "api/router.hpp"
#include "app/config.hpp"
#include "broker/broker.hpp"
#include "engine/registry.hpp"
#include "http/server.hpp"
#include "jobs/job_service.hpp"
#include "store/log_store.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace spool {

// The server: its io_contexts, the models, broker and job service on them, and the HTTP front.
class App {
 public:
  // Serves as `cfg` (finalized) says until SIGINT or SIGTERM; the process's exit status
  // (0 after a clean stop, 2 when a model or the broker is misconfigured, 1 when it cannot start).
  static int serve(Config cfg);

 private:
  // Why start-up stopped: the message (printed after "spool: ") and the exit status.
  struct Failure {
    int exit_code;
    std::string message;
  };
  using Step = std::optional<Failure>;  // nullopt: done
  using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

  explicit App(Config cfg);

  // Builds the parts, in order; the first failure.
  Step start();
  Step add_models();
  Step make_broker();
  Step make_memory_broker();
  Step make_redis_broker();
  void make_api();
  Step listen();
  // Runs every context on its thread until stop_all(); then closes the store.
  void run();
  // SIGINT/SIGTERM: ends the jobs, then the connections, then the contexts (or after a grace period).
  void on_signal(int sig);
  // Stops the broker and every context.
  void stop_all();

  // The members are destroyed bottom to top. The domain outlives every context, whose leftover
  // handlers may still reach it; what runs on a context goes before that context.
  Config cfg_;
  ModelRegistry models_;
  std::unique_ptr<JobService> jobs_;
  Metrics metrics_;
  std::unique_ptr<Router> router_;
  std::vector<std::unique_ptr<boost::asio::io_context>> net_;  // one per network thread; net_[0] signals and sweeps
  // The Redis broker's flusher and reader: on a network thread, that thread's queue would add to
  // every event's trip between instances.
  boost::asio::io_context broker_ctx_{1};
  std::unique_ptr<LogStore> store_;        // the memory broker's streams write to it
  std::unique_ptr<Broker> broker_;         // the Redis broker's background work holds it on broker_ctx_
  boost::asio::io_context engine_ctx_{1};  // engine work never runs on network threads
  std::vector<WorkGuard> guards_;          // one per context, while serving
  std::unique_ptr<http::Server> server_;
  std::uint16_t port_ = 0;  // bound
  std::optional<boost::asio::steady_timer> grace_;
  std::optional<boost::asio::signal_set> signals_;
};

}  // namespace spool
