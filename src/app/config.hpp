// Server configuration (§8): defaults < TOML file < environment < command-line flags, and the
// option structs of the server's parts built from it. A setting's default is the default of the
// option struct it ends up in; only settings no struct has are defaulted here.
#pragma once

#include "api/router.hpp"
#include "broker/memory_broker.hpp"
#include "broker/redis_broker.hpp"
#include "engine/registry.hpp"
#include "engine/upstream_limits.hpp"
#include "http/server.hpp"
#include "jobs/job_service.hpp"
#include "store/log_store.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace spool {

// A count or size as a setting (settings are signed, so that a negative one can be refused).
constexpr std::int64_t setting_of(std::size_t n) { return static_cast<std::int64_t>(n); }
// A duration as a setting: seconds.
constexpr double setting_of(std::chrono::milliseconds d) { return std::chrono::duration<double>(d).count(); }

// One entry of the models table.
struct ModelConfig {
  std::string name;
  std::string engine;                               // mock, llama, openai, anthropic
  std::string target;                               // GGUF path or upstream URL; empty for mock
  std::int64_t token_delay_ms = -1;                 // mock only; -1: the global mock_token_delay_ms
  std::int64_t parallel = LlamaOptions{}.parallel;  // llama: sequences decoded together
  std::int64_t context = LlamaOptions{}.context;    // llama: tokens per sequence
  std::int64_t threads = LlamaOptions{}.threads;    // llama: decode threads (0 = one per core)
  std::string upstream_model;                       // openai/anthropic: model name sent upstream (default: name)
  std::string api_key_env;                          // openai/anthropic: environment variable holding the API key
  double connect_timeout = setting_of(UpstreamOptions{}.connect_timeout);        // openai/anthropic, seconds
  double first_byte_timeout = setting_of(UpstreamOptions{}.first_byte_timeout);  // openai/anthropic, seconds
  double idle_timeout = setting_of(UpstreamOptions{}.idle_timeout);  // openai/anthropic, seconds between bytes
};

// One named (or unnamed) auth secret.
struct TenantConfig {
  std::string name;
  std::string secret;
  std::int64_t max_active_streams = setting_of(Tenant{}.max_active_streams);      // 0: only the global limit
  std::int64_t max_retained_streams = setting_of(Tenant{}.max_retained_streams);  // 0: only the global limit
};

// The redis:// URL of RedisEndpoint's defaults.
std::string default_redis_url();

// Every setting of `spool serve`.
struct Config {
  std::string config_file;
  std::string host = http::ServerOptions{}.host;
  std::int64_t port = http::ServerOptions{}.port;
  std::int64_t threads = 0;  // network threads; 0 = one per core
  std::string path_prefix;
  std::string auth_secret;
  std::vector<std::string> auth_secrets;
  std::vector<std::string> tenant_specs;   // NAME=SECRET
  std::vector<TenantConfig> tenants;       // from [[tenants]] in the file, then tenant_specs, then the secrets
  std::optional<bool> stream_scoping;      // unset: on when named tenants are configured (finalize_config decides)
  std::vector<std::string> allowed_hosts;  // with auth off: Host names accepted besides IPs, localhost and host
  std::vector<std::string> cors_origins;   // origins whose pages may call the API (empty: CORS off)
  std::int64_t cors_max_age = ApiOptions{}.cors.max_age.count();  // seconds
  std::string read_token_secret;  // signs read tokens (empty: derived from the auth secrets)
  std::int64_t read_token_ttl = ApiOptions{}.read_token_ttl.count();  // seconds
  bool web_ui = ApiOptions{}.web_ui;                                  // serve the playground (web/) at the root
  std::string broker = "memory";                                      // memory or redis
  std::string redis_url = default_redis_url();
  std::string redis_prefix = RedisBrokerOptions{}.prefix;
  double redis_lease = setting_of(RedisBrokerOptions{}.lease);                       // seconds
  std::int64_t stream_expiration = MemoryBrokerOptions{}.stream_expiration.count();  // seconds
  std::int64_t maximum_stream_length = static_cast<std::int64_t>(JobServiceOptions{}.maximum_stream_length);
  double ping_interval = setting_of(ApiOptions{}.ping_interval);                    // seconds
  double observer_write_timeout = setting_of(http::ServerOptions{}.write_timeout);  // seconds
  double request_timeout = setting_of(http::ServerOptions{}.read_timeout);  // seconds for a whole request to arrive
  std::int64_t max_body_bytes = setting_of(http::ServerOptions{}.body_limit);
  std::int64_t max_header_bytes = setting_of(http::ServerOptions{}.header_limit);
  std::int64_t max_active_streams = setting_of(JobServiceOptions{}.max_active_streams);
  std::int64_t max_retained_streams = setting_of(JobServiceOptions{}.max_retained_streams);
  std::int64_t max_observers = setting_of(ApiOptions{}.max_observers);
  std::int64_t max_observers_per_stream = setting_of(ApiOptions{}.max_observers_per_stream);
  std::int64_t mock_token_delay_ms = MockOptions{}.token_delay.count();
  std::int64_t upstream_max_event_bytes = setting_of(UpstreamLimits{}.max_event_bytes);
  std::int64_t upstream_max_delta_bytes = setting_of(UpstreamLimits{}.max_delta_bytes);
  std::vector<std::string> model_specs;  // NAME=ENGINE:TARGET
  std::vector<ModelConfig> models;       // from [[models]] in the file, then model_specs
  std::string default_model;
  std::string api_key_env;
  bool durable = true;  // memory broker: keep streams in data_dir across restarts
  std::string data_dir = "spool-data";
  std::string data_sync = "normal";  // normal (survives the process dying) or full (also power loss)
  std::int64_t data_segment_bytes = setting_of(LogStoreOptions{}.segment_bytes);
  std::string log_level = "info";
  std::string log_format = "text";  // text or json
};

// Declares every `spool serve` option on `cmd`, bound to `cfg`, with SPOOL_* environment names.
void add_serve_options(CLI::App& cmd, Config& cfg);

// Loads the TOML file named by --config/SPOOL_CONFIG (if any) and PrivateGPT's environment
// names into `cfg`, before flags are parsed. Throws std::runtime_error on a bad file.
void load_config_file_and_legacy_env(int argc, char** argv, Config& cfg);

// Turns model_specs into models and checks the result; throws std::runtime_error with a
// message naming the bad setting.
void finalize_config(Config& cfg);

// The option structs of the server's parts, from a finalized Config.

// The HTTP server's address, limits and deadlines.
http::ServerOptions server_options(const Config& cfg);
// The routes' settings: tenants (from cfg.tenants), scoping, origins, pings and observer limits.
ApiOptions api_options(const Config& cfg);
// The job service's limits, with its engine work on `engine_executor`.
JobServiceOptions job_service_options(const Config& cfg, boost::asio::any_io_executor engine_executor);
// The memory broker's settings, writing to `store` when not null.
MemoryBrokerOptions memory_broker_options(const Config& cfg, StreamStore* store);
// The Redis broker's settings; invalid_request naming the problem when redis_url is not a valid URL.
Result<RedisBrokerOptions> redis_broker_options(const Config& cfg);
// Where and how the durable store keeps streams.
LogStoreOptions log_store_options(const Config& cfg);
// How to build model `m`'s engine; invalid_request when the environment variable its API key is
// read from (the model's api_key_env, else the config's) is not set.
Result<EngineSpec> engine_spec(const Config& cfg, const ModelConfig& m);

}  // namespace spool
