#include "app/app.hpp"

#include "broker/memory_broker.hpp"
#include "broker/redis_broker.hpp"
#include "core/log.hpp"
#include "store/migrate.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <future>
#include <iostream>
#include <thread>

namespace spool {
namespace asio = boost::asio;

namespace {

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::size_t network_threads(const Config& cfg) {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  return cfg.threads > 0 ? static_cast<std::size_t>(cfg.threads) : hw;
}

}  // namespace

int App::serve(Config cfg) {
  setup_logging(cfg.log_level, cfg.log_format);
  raise_fd_limit();
  // glibc raises its mmap threshold each time a large block is freed; large passing buffers (a
  // write batch, a burst of frames) then come from the heap, where streams' small long-lived
  // records pin their pages after the buffers are gone. A fixed threshold keeps them apart.
  ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  {
    App app(std::move(cfg));
    if (auto failed = app.start()) {
      std::cerr << "spool: " << failed->message << "\n";
      return failed->exit_code;
    }
    app.run();
  }
  spdlog::info("stopped");
  return 0;
}

App::App(Config cfg) : cfg_(std::move(cfg)) {
  const std::size_t n = network_threads(cfg_);
  for (std::size_t i = 0; i < n; ++i) net_.push_back(std::make_unique<asio::io_context>(1));
}

App::Step App::start() {
  if (auto failed = add_models()) return failed;
  if (auto failed = make_broker()) return failed;
  make_api();
  return listen();
}

App::Step App::add_models() {
  for (const auto& m : cfg_.models) {
    auto spec = engine_spec(cfg_, m);
    if (!spec) return Failure{2, spec.error().explanation};
    auto engine = make_engine(*spec, engine_ctx_.get_executor());
    if (!engine) return Failure{2, "model '" + m.name + "': " + engine.error().explanation};
    models_.add(Model{m.name, m.engine, std::move(*engine)});
  }
  if (!cfg_.default_model.empty() && !models_.set_default(cfg_.default_model)) {
    return Failure{2, "default_model '" + cfg_.default_model + "' is not a configured model"};
  }
  return std::nullopt;
}

App::Step App::make_broker() { return cfg_.broker == "redis" ? make_redis_broker() : make_memory_broker(); }

App::Step App::make_redis_broker() {
  auto opts = redis_broker_options(cfg_);
  if (!opts) return Failure{2, opts.error().explanation};
  auto redis = std::make_unique<RedisBroker>(broker_ctx_.get_executor(), *opts);
  // Connect before serving: a cluster member that cannot reach Redis says so and exits.
  auto started = asio::co_spawn(broker_ctx_, redis->start(), asio::use_future);
  while (started.wait_for(std::chrono::seconds(0)) != std::future_status::ready) broker_ctx_.run_one();
  if (auto st = started.get(); !st) return Failure{1, st.error().explanation};
  spdlog::info("redis broker at {} (prefix {}), instance {}", opts->endpoint.where(), opts->prefix, redis->instance());
  broker_ = std::move(redis);
  return std::nullopt;
}

App::Step App::make_memory_broker() {
  if (cfg_.durable) {
    auto opened = LogStore::open(log_store_options(cfg_));
    if (!opened) return Failure{1, opened.error().explanation};
    store_ = std::move(*opened);
    auto migrated = migrate_sqlite_store(cfg_.data_dir, *store_);
    if (!migrated) return Failure{1, migrated.error().explanation};
    if (*migrated > 0) spdlog::info("durable store {}: {} stream(s) moved from spool.db", cfg_.data_dir, *migrated);
  }
  auto memory = std::make_unique<MemoryBroker>(net_.front()->get_executor(), memory_broker_options(cfg_, store_.get()));
  if (store_) {
    auto kept = store_->load_all();
    if (!kept) return Failure{1, kept.error().explanation};
    const std::size_t n = kept->size();
    const std::size_t interrupted = memory->restore(std::move(*kept), store_->tombstones());
    spdlog::info("durable store {}: {} stream(s) restored, {} interrupted by the restart", cfg_.data_dir, n,
                 interrupted);
  }
  broker_ = std::move(memory);
  return std::nullopt;
}

void App::make_api() {
  jobs_ = std::make_unique<JobService>(*broker_, models_, job_service_options(cfg_, engine_ctx_.get_executor()));
  router_ = std::make_unique<Router>(api_options(cfg_), *jobs_, metrics_);
  std::vector<asio::io_context*> contexts;
  for (auto& c : net_) contexts.push_back(c.get());
  server_ = std::make_unique<http::Server>(std::move(contexts), server_options(cfg_), *router_, *router_);
}

App::Step App::listen() {
  try {
    port_ = server_->listen();
  } catch (const std::exception& e) {
    return Failure{1, fmt::format("cannot listen on {}:{}: {}", cfg_.host, cfg_.port, e.what())};
  }
  server_->start();
  return std::nullopt;
}

void App::run() {
  for (auto& c : net_) guards_.push_back(asio::make_work_guard(*c));
  guards_.push_back(asio::make_work_guard(engine_ctx_));
  guards_.push_back(asio::make_work_guard(broker_ctx_));
  signals_.emplace(*net_.front(), SIGINT, SIGTERM);
  grace_.emplace(*net_.front());
  signals_->async_wait([this](boost::system::error_code ec, int sig) {
    if (!ec) on_signal(sig);
  });

  std::printf("spool listening on http://%s:%u\n", cfg_.host.c_str(), static_cast<unsigned>(port_));
  std::fflush(stdout);
  spdlog::info("{} network threads, broker {}, {} model(s)", net_.size(), cfg_.broker, models_.models().size());
  if (cfg_.web_ui) spdlog::info("playground at http://{}:{}{}/", cfg_.host, port_, cfg_.path_prefix);

  std::vector<std::thread> threads;
  threads.emplace_back([this] { engine_ctx_.run(); });
  if (cfg_.broker == "redis") threads.emplace_back([this] { broker_ctx_.run(); });
  for (std::size_t i = 1; i < net_.size(); ++i) threads.emplace_back([this, i] { net_[i]->run(); });
  net_.front()->run();
  for (auto& t : threads) t.join();
  // What the broker's stop() posted (closing its connections, waking its loops) runs now, so
  // its loops end instead of holding the broker at exit.
  broker_ctx_.restart();
  while (broker_ctx_.poll() > 0) {
  }
  // Everything queued is written, and the store's callbacks (which post to the contexts) are
  // done, while the contexts still exist.
  if (store_) store_->close();
}

void App::on_signal(int sig) {
  spdlog::info("signal {}: shutting down", sig);
  // Cancelled jobs' terminal events reach the broker before the connections close. With a
  // durable store, running jobs end as they would if the process died ("interrupted by
  // restart"), which is what their record says after the restart either way.
  std::optional<Error> reason;
  if (store_) reason = make_error(Errc::internal, std::string(kInterruptedByRestart));
  asio::co_spawn(*net_.front(), jobs_->stop_all(std::move(reason)), [this](const std::exception_ptr&) {
    server_->shutdown([this] { asio::post(*net_.front(), [this] { stop_all(); }); });
  });
  grace_->expires_after(std::chrono::seconds(5));
  grace_->async_wait([this](boost::system::error_code ec) {
    if (!ec) {
      spdlog::warn("connections still open after 5 s; exiting anyway");
      stop_all();
    }
  });
}

void App::stop_all() {
  broker_->stop();
  for (auto& g : guards_) g.reset();
  for (auto& c : net_) c->stop();
  engine_ctx_.stop();
  broker_ctx_.stop();
}

}  // namespace spool
