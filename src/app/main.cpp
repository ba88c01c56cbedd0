// spool: the binary. `spool serve` runs the server; chat, start, watch, status, cancel, rm and ls are its client.
#include "api/router.hpp"
#include "app/config.hpp"
#include "broker/memory_broker.hpp"
#include "broker/redis_broker.hpp"
#include "cli/commands.hpp"
#include "cli/requests.hpp"
#include "core/log.hpp"
#include "engine/mock_engine.hpp"
#include "engine/upstream_engine.hpp"
#include "store/durable_store.hpp"
#ifdef SPOOL_WITH_LLAMA
#include "engine/llama_engine.hpp"
#endif
#include "http/server.hpp"
#include "stream/job_service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <cstdio>
#include <future>
#include <iostream>
#include <thread>

namespace {

using namespace spool;
namespace asio = boost::asio;

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::chrono::milliseconds seconds_ms(double s) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0));
}

int serve(Config& cfg) {
  setup_logging(cfg.log_level, cfg.log_format);
  raise_fd_limit();
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t nthreads = cfg.threads > 0 ? static_cast<std::size_t>(cfg.threads) : hw;

  std::vector<std::unique_ptr<asio::io_context>> net;
  std::vector<asio::io_context*> net_ptrs;
  for (std::size_t i = 0; i < nthreads; ++i) {
    net.push_back(std::make_unique<asio::io_context>(1));
    net_ptrs.push_back(net.back().get());
  }
  auto engine_ctx_owner = std::make_unique<asio::io_context>(1);  // engine work never runs on network threads
  asio::io_context& engine_ctx = *engine_ctx_owner;
  // The Redis broker's flusher and reader get a thread of their own: behind observer writes on
  // a network thread they would add that thread's queue to every event's trip between instances.
  auto broker_ctx_owner = std::make_unique<asio::io_context>(1);
  asio::io_context& broker_ctx = *broker_ctx_owner;

  ModelRegistry models;
  for (const auto& m : cfg.models) {
#ifdef SPOOL_WITH_LLAMA
    if (m.engine == "llama") {
      LlamaOptions lo;
      lo.model_path = m.target;
      lo.parallel = static_cast<int>(m.parallel);
      lo.context = static_cast<int>(m.context);
      lo.threads = static_cast<int>(m.threads);
      models.add(Model{m.name, "llama", std::make_shared<LlamaEngine>(lo)});
      continue;
    }
#endif
    if (m.engine == "openai" || m.engine == "anthropic") {
      UpstreamOptions uo;
      uo.base_url = m.target;
      uo.upstream_model = m.upstream_model.empty() ? m.name : m.upstream_model;
      const std::string& key_env = m.api_key_env.empty() ? cfg.api_key_env : m.api_key_env;
      if (!key_env.empty()) {
        const char* key = std::getenv(key_env.c_str());
        if (!key) {
          std::cerr << "spool: model '" << m.name << "': environment variable " << key_env << " is not set\n";
          return 2;
        }
        uo.api_key = key;
      }
      uo.connect_timeout = seconds_ms(m.connect_timeout);
      uo.first_byte_timeout = seconds_ms(m.first_byte_timeout);
      uo.idle_timeout = seconds_ms(m.idle_timeout);
      uo.limits.max_event_bytes = static_cast<std::size_t>(cfg.upstream_max_event_bytes);
      uo.limits.max_delta_bytes = static_cast<std::size_t>(cfg.upstream_max_delta_bytes);
      UpstreamProtocol protocol = m.engine == "openai" ? openai_protocol() : anthropic_protocol();
      models.add(Model{m.name, m.engine,
                       std::make_shared<UpstreamEngine>(engine_ctx.get_executor(), uo, std::move(protocol))});
      continue;
    }
    if (m.engine != "mock") {
      std::cerr << "spool: model '" << m.name << "': engine '" << m.engine
                << "' is not available in this build yet (available: mock, openai, anthropic"
#ifdef SPOOL_WITH_LLAMA
                << ", llama"
#endif
                << ")\n";
      return 2;
    }
    const std::int64_t delay = m.token_delay_ms >= 0 ? m.token_delay_ms : cfg.mock_token_delay_ms;
    models.add(
        Model{m.name, "mock",
              std::make_shared<MockEngine>(engine_ctx.get_executor(), MockOptions{std::chrono::milliseconds(delay)})});
  }
  if (!cfg.default_model.empty() && !models.set_default(cfg.default_model)) {
    std::cerr << "spool: default_model '" << cfg.default_model << "' is not a configured model\n";
    return 2;
  }

  std::unique_ptr<DurableStore> store;  // outlives the broker, whose streams write to it
  std::unique_ptr<Broker> broker_owner;
  if (cfg.broker == "redis") {
    auto endpoint = RedisEndpoint::parse(cfg.redis_url);
    if (!endpoint) {
      std::cerr << "spool: " << endpoint.error().explanation << "\n";
      return 2;
    }
    RedisBrokerOptions ro;
    ro.endpoint = *endpoint;
    ro.prefix = cfg.redis_prefix;
    ro.stream_expiration = std::chrono::seconds(cfg.stream_expiration);
    ro.lease = seconds_ms(cfg.redis_lease);
    auto redis = std::make_unique<RedisBroker>(broker_ctx.get_executor(), ro);
    // Connect before serving: a cluster member that cannot reach Redis says so and exits.
    auto started = asio::co_spawn(broker_ctx, redis->start(), asio::use_future);
    while (started.wait_for(std::chrono::seconds(0)) != std::future_status::ready) broker_ctx.run_one();
    if (auto st = started.get(); !st) {
      std::cerr << "spool: " << st.error().explanation << "\n";
      return 1;
    }
    spdlog::info("redis broker at {} (prefix {}), instance {}", ro.endpoint.where(), ro.prefix, redis->instance());
    broker_owner = std::move(redis);
  } else {
    MemoryBrokerOptions mo{std::chrono::seconds(cfg.stream_expiration), std::chrono::milliseconds(1000)};
    if (cfg.durable) {
      auto opened = DurableStore::open(DurableStoreOptions{cfg.data_dir, cfg.data_sync == "full"});
      if (!opened) {
        std::cerr << "spool: " << opened.error().explanation << "\n";
        return 1;
      }
      store = std::move(*opened);
      mo.store = store.get();
    }
    auto memory = std::make_unique<MemoryBroker>(net.front()->get_executor(), mo);
    if (store) {
      auto kept = store->load_all();
      if (!kept) {
        std::cerr << "spool: " << kept.error().explanation << "\n";
        return 1;
      }
      const std::size_t n = kept->size();
      const std::size_t interrupted = memory->restore(std::move(*kept));
      spdlog::info("durable store {}: {} stream(s) restored, {} interrupted by the restart", cfg.data_dir, n,
                   interrupted);
    }
    broker_owner = std::move(memory);
  }
  Broker& broker = *broker_owner;
  JobServiceOptions job_opts;
  job_opts.maximum_stream_length = static_cast<std::uint64_t>(cfg.maximum_stream_length);
  job_opts.max_active_streams = static_cast<std::size_t>(cfg.max_active_streams);
  job_opts.max_retained_streams = static_cast<std::size_t>(cfg.max_retained_streams);
  job_opts.engine_executor = engine_ctx.get_executor();
  JobService jobs(broker, models, std::move(job_opts));
  Metrics metrics;
  ApiOptions api;
  api.path_prefix = cfg.path_prefix;
  for (const auto& t : cfg.tenants) {
    api.tenants.push_back(Tenant{t.name, t.secret, static_cast<std::size_t>(t.max_active_streams),
                                 static_cast<std::size_t>(t.max_retained_streams)});
  }
  api.stream_scoping = cfg.stream_scoping.value_or(false);
  api.origins = OriginPolicy{cfg.host, cfg.allowed_hosts, {}};
  api.web_ui = cfg.web_ui;
  api.ping_interval = seconds_ms(cfg.ping_interval);
  api.broker_name = cfg.broker;
  api.max_observers = static_cast<std::size_t>(cfg.max_observers);
  api.max_observers_per_stream = static_cast<std::size_t>(cfg.max_observers_per_stream);
  Router router(api, jobs, metrics);

  http::ServerOptions so;
  so.host = cfg.host;
  so.port = static_cast<std::uint16_t>(cfg.port);
  so.header_limit = static_cast<std::size_t>(cfg.max_header_bytes);
  so.body_limit = static_cast<std::size_t>(cfg.max_body_bytes);
  so.read_timeout = seconds_ms(cfg.request_timeout);
  so.write_timeout = seconds_ms(cfg.observer_write_timeout);
  auto server_owner = std::make_unique<http::Server>(net_ptrs, so, router, router);
  http::Server& server = *server_owner;
  std::uint16_t port = 0;
  try {
    port = server.listen();
  } catch (const std::exception& e) {
    std::cerr << "spool: cannot listen on " << cfg.host << ":" << cfg.port << ": " << e.what() << "\n";
    return 1;
  }
  server.start();

  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  guards.reserve(net.size());
  for (auto& c : net) guards.push_back(asio::make_work_guard(*c));
  auto engine_guard = asio::make_work_guard(engine_ctx);
  auto broker_guard = asio::make_work_guard(broker_ctx);

  auto stop_all = [&] {
    broker.stop();
    for (auto& g : guards) g.reset();
    engine_guard.reset();
    broker_guard.reset();
    for (auto& c : net) c->stop();
    engine_ctx.stop();
    broker_ctx.stop();
  };

  auto signals_owner = std::make_unique<asio::signal_set>(*net.front(), SIGINT, SIGTERM);
  auto grace_owner = std::make_unique<asio::steady_timer>(*net.front());
  asio::signal_set& signals = *signals_owner;
  asio::steady_timer& grace = *grace_owner;
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    // Cancelled jobs' terminal events reach the broker before the connections close.
    // With a durable store, running jobs end as they would if the process died ("interrupted
    // by restart"), which is what their record says after the restart either way.
    std::optional<Error> reason;
    if (store) reason = make_error(Errc::internal, std::string(kInterruptedByRestart));
    asio::co_spawn(*net.front(), jobs.stop_all(std::move(reason)),
                   [&](const std::exception_ptr&) { server.shutdown([&] { asio::post(*net.front(), stop_all); }); });
    grace.expires_after(std::chrono::seconds(5));
    grace.async_wait([&](boost::system::error_code gec) {
      if (!gec) {
        spdlog::warn("connections still open after 5 s; exiting anyway");
        stop_all();
      }
    });
  });

  std::printf("spool listening on http://%s:%u\n", cfg.host.c_str(), static_cast<unsigned>(port));
  std::fflush(stdout);
  spdlog::info("{} network threads, broker {}, {} model(s)", nthreads, cfg.broker, models.models().size());
  if (cfg.web_ui) spdlog::info("playground at http://{}:{}{}/", cfg.host, port, cfg.path_prefix);

  std::vector<std::thread> threads;
  threads.emplace_back([&] { engine_ctx.run(); });
  if (cfg.broker == "redis") threads.emplace_back([&] { broker_ctx.run(); });
  for (std::size_t i = 1; i < net.size(); ++i) threads.emplace_back([&, i] { net[i]->run(); });
  net.front()->run();
  for (auto& t : threads) t.join();
  // Everything queued is written, and the store's callbacks (which post to the contexts) are
  // done, while the contexts still exist.
  if (store) store->close();
  // I/O objects go before their io_contexts; the contexts go (destroying the handlers they
  // still hold, which may touch the broker and metrics) before the domain objects.
  signals_owner.reset();
  grace_owner.reset();
  server_owner.reset();
  engine_ctx_owner.reset();
  // The Redis broker's background work holds it on its context: let it go while that still
  // exists (nothing calls it any more: it was stopped and the server is gone).
  broker_owner.reset();
  store.reset();
  broker_ctx_owner.reset();
  net.clear();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Spool: LLM chat completions as background jobs"};
  app.require_subcommand(1);
  Config cfg;
  CLI::App* serve_cmd = app.add_subcommand("serve", "Run the server");
  // The server's configuration file means nothing to the client subcommands.
  if (argc < 2 || !cli::is_client_command(argv[1])) {
    try {
      load_config_file_and_legacy_env(argc, argv, cfg);
    } catch (const std::exception& e) {
      std::cerr << "spool: " << e.what() << "\n";
      return 2;
    }
  }
  add_serve_options(*serve_cmd, cfg);
  cli::Commands client(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : cli::exit_code::usage;
  }
  if (serve_cmd->parsed()) {
    try {
      finalize_config(cfg);
    } catch (const std::exception& e) {
      std::cerr << "spool: " << e.what() << "\n";
      return 2;
    }
    return serve(cfg);
  }
  if (auto rc = client.run()) return *rc;
  return 0;
}
