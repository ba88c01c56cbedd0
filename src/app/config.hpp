// Server configuration (§8): defaults < TOML file < environment < command-line flags.
#pragma once

#include "engine/upstream_limits.hpp"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace spool {

// One entry of the models table.
struct ModelConfig {
  std::string name;
  std::string engine;                // mock, llama, openai, anthropic
  std::string target;                // GGUF path or upstream URL; empty for mock
  std::int64_t token_delay_ms = -1;  // mock only; -1: the global mock_token_delay_ms
  std::int64_t parallel = 4;         // llama: sequences decoded together
  std::int64_t context = 4096;       // llama: tokens per sequence
  std::int64_t threads = 0;          // llama: decode threads (0 = one per core)
  std::string upstream_model;        // openai/anthropic: model name sent upstream (default: name)
  std::string api_key_env;           // openai/anthropic: environment variable holding the API key
  double connect_timeout = 10;       // openai/anthropic, seconds
  double first_byte_timeout = 120;   // openai/anthropic, seconds
  double idle_timeout = 60;          // openai/anthropic, seconds between streamed bytes
};

// One named (or unnamed) auth secret.
struct TenantConfig {
  std::string name;
  std::string secret;
  std::int64_t max_active_streams = 0;    // 0: only the global limit
  std::int64_t max_retained_streams = 0;  // 0: only the global limit
};

// Every setting of `spool serve`.
struct Config {
  std::string config_file;
  std::string host = "127.0.0.1";
  std::int64_t port = 8080;
  std::int64_t threads = 0;  // network threads; 0 = one per core
  std::string path_prefix;
  std::string auth_secret;
  std::vector<std::string> auth_secrets;
  std::vector<std::string> tenant_specs;   // NAME=SECRET
  std::vector<TenantConfig> tenants;       // from [[tenants]] in the file, then tenant_specs, then the secrets
  std::optional<bool> stream_scoping;      // unset: on when named tenants are configured (finalize_config decides)
  std::vector<std::string> allowed_hosts;  // with auth off: Host names accepted besides IPs, localhost and host
  bool web_ui = true;                      // serve the playground (web/) at the root
  std::string broker = "memory";
  std::string redis_url = "redis://127.0.0.1:6379/0";
  std::string redis_prefix = "spool:";
  double redis_lease = 10;  // seconds
  std::int64_t stream_expiration = 3600;
  std::int64_t maximum_stream_length = 100000;
  double ping_interval = 15.0;           // seconds
  double observer_write_timeout = 30.0;  // seconds
  double request_timeout = 30.0;         // seconds for a whole request to arrive (and keep-alive idle)
  std::int64_t max_body_bytes = std::int64_t{16} * 1024 * 1024;
  std::int64_t max_header_bytes = std::int64_t{16} * 1024;
  std::int64_t max_active_streams = 10000;
  std::int64_t max_retained_streams = 100000;
  std::int64_t max_observers = 100000;
  std::int64_t max_observers_per_stream = 10000;
  std::int64_t mock_token_delay_ms = 20;
  std::int64_t upstream_max_event_bytes = static_cast<std::int64_t>(UpstreamLimits{}.max_event_bytes);
  std::int64_t upstream_max_delta_bytes = static_cast<std::int64_t>(UpstreamLimits{}.max_delta_bytes);
  std::vector<std::string> model_specs;  // NAME=ENGINE:TARGET
  std::vector<ModelConfig> models;       // from [[models]] in the file, then model_specs
  std::string default_model;
  std::string api_key_env;
  bool durable = true;  // memory broker: keep streams in data_dir across restarts
  std::string data_dir = "spool-data";
  std::string data_sync = "normal";  // normal (survives the process dying) or full (also power loss)
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

}  // namespace spool
