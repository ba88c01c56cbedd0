#include "app/config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace spool {
namespace {

namespace fs = std::filesystem;

bool spool_variable(std::string_view name) { return name.starts_with("SPOOL_") || name.starts_with("PGPT_ASYNC_"); }

// Runs each test without the caller's SPOOL_* and PGPT_ASYNC_* variables (and restores them
// after); loads a Config the way `spool serve` does, from TOML files it writes in a temp dir.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& [name, value] : spool_environment()) {
      saved_[name] = value;
      ::unsetenv(name.c_str());
    }
    dir_ = fs::temp_directory_path() / ("spool-config-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }

  void TearDown() override {
    for (const auto& entry : spool_environment()) ::unsetenv(entry.first.c_str());
    for (const auto& [name, value] : saved_) ::setenv(name.c_str(), value.c_str(), 1);
    fs::remove_all(dir_);
  }

  // Sets an environment variable for this test (a SPOOL_ or PGPT_ASYNC_ name: TearDown unsets it).
  static void set_env(const std::string& name, const std::string& value) {
    ASSERT_TRUE(spool_variable(name)) << name;
    ::setenv(name.c_str(), value.c_str(), 1);
  }

  // Writes `toml` to a file of its own; its path.
  std::string write_toml(const std::string& toml) {
    const fs::path path = dir_ / ("spool-" + std::to_string(files_++) + ".toml");
    std::ofstream(path) << toml;
    return path.string();
  }

  // `spool serve ARGS...` as main() reads it: the file and PrivateGPT's names, then flags and
  // SPOOL_* (CLI11), then finalize_config. Throws what those throw.
  static Config load(std::vector<std::string> args) {
    args.insert(args.begin(), {"spool", "serve"});
    std::vector<char*> argv;
    argv.reserve(args.size());
    for (auto& a : args) argv.push_back(a.data());
    const int argc = static_cast<int>(argv.size());
    Config cfg;
    load_config_file_and_legacy_env(argc, argv.data(), cfg);
    CLI::App app;
    add_serve_options(*app.add_subcommand("serve"), cfg);
    app.parse(argc, argv.data());
    finalize_config(cfg);
    return cfg;
  }

  // The message load() throws with (a std::runtime_error), or "" when it succeeds.
  static std::string load_error(std::vector<std::string> args) {
    try {
      load(std::move(args));
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }

 private:
  static std::map<std::string, std::string> spool_environment() {
    std::map<std::string, std::string> found;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry(*e);
      const auto eq = entry.find('=');
      if (eq != std::string::npos && spool_variable(entry.substr(0, eq)))
        found[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    return found;
  }

  std::map<std::string, std::string> saved_;
  fs::path dir_;
  int files_ = 0;
};

TEST_F(ConfigTest, DefaultsAreTheOptionStructsDefaults) {
  const Config cfg = load({});
  const http::ServerOptions server = server_options(cfg), server_default;
  EXPECT_EQ(server.host, server_default.host);
  EXPECT_EQ(server.port, server_default.port);
  EXPECT_EQ(server.header_limit, server_default.header_limit);
  EXPECT_EQ(server.body_limit, server_default.body_limit);
  EXPECT_EQ(server.read_timeout, server_default.read_timeout);
  EXPECT_EQ(server.write_timeout, server_default.write_timeout);

  const ApiOptions api = api_options(cfg), api_default;
  EXPECT_TRUE(api.tenants.empty());
  EXPECT_EQ(api.stream_scoping, api_default.stream_scoping);
  EXPECT_EQ(api.ping_interval, api_default.ping_interval);
  EXPECT_EQ(api.max_observers, api_default.max_observers);
  EXPECT_EQ(api.max_observers_per_stream, api_default.max_observers_per_stream);
  EXPECT_EQ(api.broker_name, api_default.broker_name);
  EXPECT_EQ(api.web_ui, api_default.web_ui);

  const JobServiceOptions jobs = job_service_options(cfg, {}), jobs_default;
  EXPECT_EQ(jobs.maximum_stream_length, jobs_default.maximum_stream_length);
  EXPECT_EQ(jobs.max_active_streams, jobs_default.max_active_streams);
  EXPECT_EQ(jobs.max_retained_streams, jobs_default.max_retained_streams);
  EXPECT_EQ(memory_broker_options(cfg, nullptr).stream_expiration, MemoryBrokerOptions{}.stream_expiration);

  const auto redis = redis_broker_options(cfg);
  ASSERT_TRUE(redis.ok());
  const RedisBrokerOptions redis_default;
  EXPECT_EQ(redis->endpoint.host, redis_default.endpoint.host);
  EXPECT_EQ(redis->endpoint.port, redis_default.endpoint.port);
  EXPECT_EQ(redis->endpoint.db, redis_default.endpoint.db);
  EXPECT_EQ(redis->prefix, redis_default.prefix);
  EXPECT_EQ(redis->lease, redis_default.lease);
  EXPECT_EQ(redis->stream_expiration, redis_default.stream_expiration);
  EXPECT_EQ(cfg.data_dir, "spool-data");
  EXPECT_FALSE(log_store_options(cfg).fsync_each);
}

TEST_F(ConfigTest, ModelDefaultsAreTheEnginesDefaults) {
  const Config cfg = load({});
  ASSERT_EQ(cfg.models.size(), 1u);  // none configured: one mock model
  EXPECT_EQ(cfg.models[0].name, "mock");
  auto mock = engine_spec(cfg, cfg.models[0]);
  ASSERT_TRUE(mock.ok());
  EXPECT_EQ(mock->kind, "mock");
  EXPECT_EQ(mock->mock.token_delay, MockOptions{}.token_delay);

  ModelConfig m;
  m.name = "up";
  m.engine = "openai";
  auto spec = engine_spec(cfg, m);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->llama.parallel, LlamaOptions{}.parallel);
  EXPECT_EQ(spec->llama.context, LlamaOptions{}.context);
  EXPECT_EQ(spec->llama.threads, LlamaOptions{}.threads);
  EXPECT_EQ(spec->upstream.connect_timeout, UpstreamOptions{}.connect_timeout);
  EXPECT_EQ(spec->upstream.first_byte_timeout, UpstreamOptions{}.first_byte_timeout);
  EXPECT_EQ(spec->upstream.idle_timeout, UpstreamOptions{}.idle_timeout);
  EXPECT_EQ(spec->upstream.limits.max_event_bytes, UpstreamLimits{}.max_event_bytes);
  EXPECT_EQ(spec->upstream.limits.max_delta_bytes, UpstreamLimits{}.max_delta_bytes);
  EXPECT_EQ(spec->upstream.upstream_model, "up");  // default: the model's own name
}

TEST_F(ConfigTest, FileThenEnvironmentThenFlags) {
  const std::string file =
      write_toml("port = 1111\nhost = \"0.0.0.0\"\nping_interval = 2.5\nlog_level = \"debug\"\nmax_observers = 7\n");
  set_env("SPOOL_PORT", "2222");
  set_env("SPOOL_PING_INTERVAL", "3.5");
  set_env("SPOOL_LOG_LEVEL", "warn");
  const Config cfg = load({"--config", file, "--log-level", "error"});
  EXPECT_EQ(cfg.max_observers, 7);  // file only
  EXPECT_EQ(cfg.host, "0.0.0.0");   // file only
  EXPECT_EQ(cfg.port, 2222);        // environment over file
  EXPECT_EQ(cfg.ping_interval, 3.5);
  EXPECT_EQ(cfg.log_level, "error");  // flag over environment over file
  EXPECT_EQ(cfg.request_timeout, Config{}.request_timeout);
  EXPECT_EQ(server_options(cfg).port, 2222);
  EXPECT_EQ(api_options(cfg).ping_interval, std::chrono::milliseconds(3500));
}

TEST_F(ConfigTest, TheFileIsNamedByFlagOrEnvironment) {
  const std::string by_env = write_toml("port = 1\n");
  const std::string by_flag = write_toml("port = 2\n");
  set_env("SPOOL_CONFIG", by_env);
  EXPECT_EQ(load({}).port, 1);
  EXPECT_EQ(load({"--config", by_flag}).port, 2);
  EXPECT_EQ(load({"--config=" + by_flag}).port, 2);
}

TEST_F(ConfigTest, PrivateGptNamesSitBetweenFileAndSpoolNames) {
  const std::string file = write_toml("stream_expiration = 10\nmaximum_stream_length = 20\nbroker = \"memory\"\n");
  set_env("PGPT_ASYNC_STREAM_EXPIRATION", "60");
  set_env("PGPT_ASYNC_MAXIMUM_STREAM_LENGTH", "500");
  set_env("PGPT_ASYNC_BROKER", "redis");
  Config cfg = load({"--config", file});
  EXPECT_EQ(cfg.stream_expiration, 60);
  EXPECT_EQ(cfg.maximum_stream_length, 500);
  EXPECT_EQ(cfg.broker, "redis");

  set_env("SPOOL_STREAM_EXPIRATION", "70");
  set_env("SPOOL_BROKER", "memory");
  cfg = load({"--config", file, "--maximum-stream-length", "900"});
  EXPECT_EQ(cfg.stream_expiration, 70);
  EXPECT_EQ(cfg.broker, "memory");
  EXPECT_EQ(cfg.maximum_stream_length, 900);
  EXPECT_EQ(job_service_options(cfg, {}).maximum_stream_length, 900u);
  EXPECT_EQ(memory_broker_options(cfg, nullptr).stream_expiration, std::chrono::seconds(70));
}

TEST_F(ConfigTest, ListsTakeCommasOrRepeatsAndALaterSourceReplacesThem) {
  using Hosts = std::vector<std::string>;
  EXPECT_EQ(load({"--allowed-hosts", "a.test,b.test"}).allowed_hosts, (Hosts{"a.test", "b.test"}));
  EXPECT_EQ(load({"--allowed-hosts", "a.test", "--allowed-hosts", "b.test"}).allowed_hosts,
            (Hosts{"a.test", "b.test"}));
  const std::string file = write_toml("allowed_hosts = [\"f.test\", \".example.com\"]\n");
  EXPECT_EQ(load({"--config", file}).allowed_hosts, (Hosts{"f.test", ".example.com"}));
  set_env("SPOOL_ALLOWED_HOSTS", "e1.test,e2.test");
  EXPECT_EQ(load({"--config", file}).allowed_hosts, (Hosts{"e1.test", "e2.test"}));
  EXPECT_EQ(load({"--config", file, "--allowed-hosts", "flag.test"}).allowed_hosts, Hosts{"flag.test"});
}

TEST_F(ConfigTest, CorsAndReadTokenSettingsReachTheRoutes) {
  EXPECT_TRUE(api_options(load({})).cors.origins.empty()) << "CORS is off by default";
  set_env("SPOOL_CORS_ORIGINS", "https://App.test/,http://localhost:5173");
  const Config cfg = load({"--cors-max-age", "60", "--read-token-ttl", "30", "--read-token-secret", "k"});
  const ApiOptions api = api_options(cfg);
  EXPECT_EQ(api.cors.origins, (std::vector<std::string>{"https://app.test", "http://localhost:5173"}));
  EXPECT_EQ(api.origins.allowed_origins, api.cors.origins) << "without auth a CORS origin may send unsafe methods";
  EXPECT_EQ(api.cors.max_age, std::chrono::seconds(60));
  EXPECT_EQ(api.read_token_ttl, std::chrono::seconds(30));
  EXPECT_EQ(api.read_token_key, "k");
  EXPECT_EQ(load_error({"--cors-origins", "app.test"}),
            "cors_origins: 'app.test' is not an origin (scheme://host[:port], e.g. https://app.example.com) or '*'");
  EXPECT_EQ(load_error({"--read-token-ttl", "0"}), "read_token_ttl must be at least 1 second");
}

TEST_F(ConfigTest, ModelsFromFileThenFlags) {
  const std::string file = write_toml(
      "[[models]]\nname = \"up\"\nengine = \"openai\"\nurl = \"http://127.0.0.1:1/v1\"\nidle_timeout = 5\n"
      "parallel = 2\n");
  set_env("SPOOL_MODELS", "env=mock:");
  Config cfg = load({"--config", file});
  ASSERT_EQ(cfg.models.size(), 2u);
  EXPECT_EQ(cfg.models[0].name, "up");
  EXPECT_EQ(cfg.models[0].target, "http://127.0.0.1:1/v1");
  EXPECT_EQ(cfg.models[0].idle_timeout, 5);
  EXPECT_EQ(cfg.models[0].parallel, 2);
  EXPECT_EQ(cfg.models[0].context, ModelConfig{}.context);
  EXPECT_EQ(cfg.models[1].name, "env");

  cfg = load({"--config", file, "--model", "a=mock:", "--model", "b=llama:/m.gguf"});
  ASSERT_EQ(cfg.models.size(), 3u);
  EXPECT_EQ(cfg.models[1].name, "a");
  EXPECT_EQ(cfg.models[2].engine, "llama");
  EXPECT_EQ(cfg.models[2].target, "/m.gguf");
  auto spec = engine_spec(cfg, cfg.models[0]);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->upstream.idle_timeout, std::chrono::seconds(5));
}

TEST_F(ConfigTest, TenantsFromFileThenFlagsThenSecrets) {
  const std::string file = write_toml("[[tenants]]\nname = \"acme\"\nsecret = \"s-acme\"\nmax_active_streams = 3\n");
  const Config cfg =
      load({"--config", file, "--tenants", "beta=s-beta", "--auth-secret", "s-one", "--auth-secrets", "s-two,s-three"});
  const ApiOptions api = api_options(cfg);
  ASSERT_EQ(api.tenants.size(), 5u);
  EXPECT_EQ(api.tenants[0].name, "acme");
  EXPECT_EQ(api.tenants[0].max_active_streams, 3u);
  EXPECT_EQ(api.tenants[0].max_retained_streams, 0u);
  EXPECT_EQ(api.tenants[1].name, "beta");
  EXPECT_EQ(api.tenants[1].secret, "s-beta");
  EXPECT_EQ(api.tenants[2].secret, "s-one");  // auth_secret first, then auth_secrets
  EXPECT_EQ(api.tenants[3].secret, "s-two");
  EXPECT_EQ(api.tenants[4].secret, "s-three");
  EXPECT_TRUE(api.tenants[4].name.empty());
}

TEST_F(ConfigTest, StreamScopingUnsetIsOnWithNamedTenants) {
  EXPECT_FALSE(*load({}).stream_scoping);
  EXPECT_FALSE(*load({"--auth-secret", "s"}).stream_scoping);  // unnamed secrets only
  EXPECT_TRUE(*load({"--tenants", "acme=s"}).stream_scoping);
  EXPECT_TRUE(api_options(load({"--tenants", "acme=s"})).stream_scoping);
  EXPECT_TRUE(*load({"--stream-scoping", "true"}).stream_scoping);  // set: kept, tenants or not
  EXPECT_FALSE(*load({"--tenants", "acme=s", "--stream-scoping", "false"}).stream_scoping);

  const std::string file = write_toml("stream_scoping = false\n");
  EXPECT_FALSE(*load({"--config", file, "--tenants", "acme=s"}).stream_scoping);
  EXPECT_TRUE(*load({"--config", file, "--stream-scoping", "true"}).stream_scoping);
  set_env("SPOOL_STREAM_SCOPING", "true");
  EXPECT_TRUE(*load({"--config", file}).stream_scoping);
  EXPECT_FALSE(*load({"--config", file, "--stream-scoping", "false"}).stream_scoping);
}

TEST_F(ConfigTest, BadFileValuesSayWhichSetting) {
  const auto file_error = [this](const std::string& toml) { return load_error({"--config", write_toml(toml)}); };
  EXPECT_EQ(file_error("port = \"8080\"\n"), "config: port must be an integer");
  EXPECT_EQ(file_error("ping_interval = \"x\"\n"), "config: ping_interval must be a number");
  EXPECT_EQ(file_error("web_ui = \"on\"\n"), "config: web_ui must be a boolean");
  EXPECT_EQ(file_error("host = 1\n"), "config: host must be a string");
  EXPECT_EQ(file_error("stream_scoping = \"yes\"\n"), "config: stream_scoping must be a boolean");
  EXPECT_EQ(file_error("allowed_hosts = \"a\"\n"), "config: allowed_hosts must be an array of strings");
  EXPECT_EQ(file_error("allowed_hosts = [1]\n"), "config: allowed_hosts must be an array of strings");
  EXPECT_EQ(file_error("models = 1\n"), "config: models must be an array of tables ([[models]])");
  EXPECT_EQ(file_error("[[models]]\nname = \"m\"\n"), "config: every [[models]] entry needs name and engine");
  EXPECT_EQ(file_error("[[models]]\nname = \"m\"\nengine = \"mock\"\nparallel = 0\n"),
            "config: model 'm': parallel >= 1, context >= 64, threads >= 0");
  EXPECT_EQ(file_error("[[tenants]]\nname = \"a\"\nsecret = \"s\"\nlimit = 1\n"),
            "config: [[tenants]] has no key 'limit' (name, secret, max_active_streams, max_retained_streams)");

  const std::string unknown = write_toml("prot = 8080\n");
  EXPECT_EQ(load_error({"--config", unknown}), "config file " + unknown + ": unknown key 'prot'");
  const std::string broken = write_toml("port = \n");
  EXPECT_TRUE(load_error({"--config", broken}).starts_with("config file " + broken + ": "))
      << load_error({"--config", broken});
  const std::string missing = (fs::temp_directory_path() / "spool-config-test-no-such-file.toml").string();
  EXPECT_TRUE(load_error({"--config", missing}).starts_with("config file " + missing + ": "));
}

TEST_F(ConfigTest, BadFlagAndEnvironmentValuesAreParseErrors) {
  EXPECT_THROW(load({"--port", "eighty"}), CLI::ParseError);
  EXPECT_THROW(load({"--ping-interval", "soon"}), CLI::ParseError);
  EXPECT_THROW(load({"--stream-scoping", "maybe"}), CLI::ParseError);
  EXPECT_THROW(load({"--no-such-setting", "1"}), CLI::ParseError);
  set_env("SPOOL_MAX_BODY_BYTES", "lots");
  EXPECT_THROW(load({}), CLI::ParseError);
}

TEST_F(ConfigTest, OutOfRangeValuesNameTheRule) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--port", "70000"}, "port must be 0..65535"},
      {{"--broker", "kafka"}, "broker must be memory or redis"},
      {{"--ping-interval", "0"}, "ping_interval must be > 0"},
      {{"--maximum-stream-length", "1"}, "maximum_stream_length must be at least 2"},
      {{"--max-body-bytes", "0"}, "max_body_bytes must be > 0"},
      {{"--upstream-max-event-bytes", "1000"}, "upstream_max_event_bytes must be at least 1024"},
      {{"--upstream-max-delta-bytes", "0"}, "upstream_max_delta_bytes must be > 0"},
      {{"--max-active-streams", "0"}, "max_active_streams must be at least 1"},
      {{"--max-retained-streams", "0"}, "max_retained_streams must be at least 1"},
      {{"--max-observers", "0"}, "max_observers must be at least 1"},
      {{"--max-observers-per-stream", "0"}, "max_observers_per_stream must be at least 1"},
      {{"--stream-expiration", "-1"}, "stream_expiration must be >= 0"},
      {{"--redis-lease", "0.05"}, "redis_lease must be at least 0.1 seconds"},
      {{"--log-format", "xml"}, "log_format must be text or json"},
      {{"--data-sync", "always"}, "data_sync must be normal or full"},
      {{"--data-dir", ""}, "data_dir must name a directory (or set durable = false)"},
      {{"--model", "nameless"}, "--model nameless: expected NAME=ENGINE:TARGET, e.g. echo=mock:"},
      {{"--model", "a=mock:", "--model", "a=mock:"}, "model 'a' is declared twice"},
      {{"--tenants", "acme"}, "--tenants acme: expected NAME=SECRET"},
      {{"--tenants", "a=s,b=s"}, "the same auth secret is configured twice"},
      {{"--tenants", "a=s1,a=s2"}, "tenant 'a' is declared twice"},
  };
  for (const auto& [args, message] : cases) EXPECT_EQ(load_error(args), message) << args[0];
  EXPECT_EQ(load_error({"--data-dir", "", "--durable", "false"}), "");
  EXPECT_EQ(load_error({"--data-dir", "", "--broker", "redis"}), "");
}

TEST_F(ConfigTest, BuiltOptionsCarryTheSettings) {
  const Config cfg = load({"--request-timeout", "1.5", "--observer-write-timeout", "0.25", "--max-header-bytes", "4096",
                           "--redis-url", "redis://:pw@cache.test:7000/3", "--redis-prefix", "x:", "--data-sync",
                           "full", "--data-dir", "/tmp/d", "--path-prefix", "/spool"});
  const http::ServerOptions server = server_options(cfg);
  EXPECT_EQ(server.read_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(server.write_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(server.header_limit, 4096u);
  auto redis = redis_broker_options(cfg);
  ASSERT_TRUE(redis.ok());
  EXPECT_EQ(redis->endpoint.host, "cache.test");
  EXPECT_EQ(redis->endpoint.port, 7000);
  EXPECT_EQ(redis->endpoint.db, 3);
  EXPECT_EQ(redis->prefix, "x:");
  const LogStoreOptions store = log_store_options(cfg);
  EXPECT_EQ(store.dir, "/tmp/d");
  EXPECT_TRUE(store.fsync_each);
  EXPECT_EQ(api_options(cfg).path_prefix, "/spool");

  Config bad = cfg;
  bad.redis_url = "http://cache.test";
  auto refused = redis_broker_options(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::invalid_request);
}

TEST_F(ConfigTest, AnUpstreamModelsKeyComesFromItsEnvironmentVariable) {
  Config cfg = load({"--model", "up=anthropic:http://127.0.0.1:1", "--api-key-env", "SPOOL_TEST_GLOBAL_KEY"});
  auto missing = engine_spec(cfg, cfg.models[0]);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().explanation, "model 'up': environment variable SPOOL_TEST_GLOBAL_KEY is not set");

  set_env("SPOOL_TEST_GLOBAL_KEY", "global-key");
  auto global = engine_spec(cfg, cfg.models[0]);
  ASSERT_TRUE(global.ok());
  EXPECT_EQ(global->upstream.api_key, "global-key");

  cfg.models[0].api_key_env = "SPOOL_TEST_MODEL_KEY";  // the model's own variable comes first
  set_env("SPOOL_TEST_MODEL_KEY", "model-key");
  EXPECT_EQ(engine_spec(cfg, cfg.models[0])->upstream.api_key, "model-key");

  ModelConfig mock;
  mock.name = mock.engine = "mock";
  mock.api_key_env = "SPOOL_TEST_UNSET_KEY";  // only upstream engines read a key
  EXPECT_TRUE(engine_spec(cfg, mock).ok());
}

}  // namespace
}  // namespace spool
