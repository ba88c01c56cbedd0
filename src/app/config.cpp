#include "app/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <stdexcept>

namespace spool {
namespace {

// A setting in seconds as the durations the option structs hold.
std::chrono::milliseconds seconds_ms(double s) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0));
}

// One scalar setting: its TOML key, flag and environment name derive from `key`.
struct Setting {
  std::string key;  // snake_case
  std::string help;
  std::function<void(CLI::App&, const std::string& flag, const std::string& env)> add;
  std::function<void(const toml::node&)> from_toml;
};

std::string env_name(const std::string& key) {
  std::string e = "SPOOL_";
  for (char c : key) e.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return e;
}

std::string flag_name(const std::string& key) {
  std::string f = "--";
  for (char c : key) f.push_back(c == '_' ? '-' : c);
  return f;
}

template <class T>
Setting scalar(const std::string& key, T& ref, const std::string& help) {
  Setting s;
  s.key = key;
  s.help = help;
  s.add = [&ref, help](CLI::App& app, const std::string& flag, const std::string& env) {
    app.add_option(flag, ref, help)->envname(env)->capture_default_str();
  };
  s.from_toml = [&ref, key](const toml::node& n) {
    if constexpr (std::is_same_v<T, bool>) {
      auto v = n.value<bool>();
      if (!v) throw std::runtime_error("config: " + key + " must be a boolean");
      ref = *v;
    } else if constexpr (std::is_same_v<T, double>) {
      auto v = n.value<double>();
      if (!v) throw std::runtime_error("config: " + key + " must be a number");
      ref = *v;
    } else if constexpr (std::is_integral_v<T>) {
      auto v = n.value<std::int64_t>();
      if (!v) throw std::runtime_error("config: " + key + " must be an integer");
      ref = *v;
    } else {
      auto v = n.value<std::string>();
      if (!v) throw std::runtime_error("config: " + key + " must be a string");
      ref = *v;
    }
  };
  return s;
}

// A yes/no setting whose absence means "decided from the other settings" (finalize_config).
Setting tri_state(const std::string& key, std::optional<bool>& ref, const std::string& help) {
  Setting s;
  s.key = key;
  s.help = help;
  s.add = [&ref, help](CLI::App& app, const std::string& flag, const std::string& env) {
    app.add_option_function<bool>(
           flag, [&ref](const bool& v) { ref = v; }, help)
        ->envname(env);
  };
  s.from_toml = [&ref, key](const toml::node& n) {
    auto v = n.value<bool>();
    if (!v) throw std::runtime_error("config: " + key + " must be a boolean");
    ref = *v;
  };
  return s;
}

Setting list(const std::string& key, std::vector<std::string>& ref, const std::string& help) {
  Setting s;
  s.key = key;
  s.help = help;
  s.add = [&ref, help](CLI::App& app, const std::string& flag, const std::string& env) {
    app.add_option(flag, ref, help)->envname(env)->delimiter(',');
  };
  s.from_toml = [&ref, key](const toml::node& n) {
    const toml::array* a = n.as_array();
    if (!a) throw std::runtime_error("config: " + key + " must be an array of strings");
    ref.clear();
    for (const auto& e : *a) {
      auto v = e.value<std::string>();
      if (!v) throw std::runtime_error("config: " + key + " must be an array of strings");
      ref.push_back(*v);
    }
  };
  return s;
}

std::vector<Setting> settings(Config& c) {
  return {
      scalar("host", c.host, "Listen address"),
      scalar("port", c.port, "Listen port (0 = any free port, printed at start-up)"),
      scalar("threads", c.threads, "Network threads (0 = one per core)"),
      scalar("path_prefix", c.path_prefix, "Routes also answer under this path prefix"),
      scalar("auth_secret", c.auth_secret, "The auth secret: the whole Authorization header value"),
      list("auth_secrets", c.auth_secrets, "Further accepted secrets (comma-separated)"),
      list("tenants", c.tenant_specs, "Named secrets NAME=SECRET (comma-separated; [[tenants]] in the file)"),
      tri_state("stream_scoping", c.stream_scoping,
                "A stream is visible only to the secret that created it (default: on when named tenants are set)"),
      list("allowed_hosts", c.allowed_hosts,
           "With auth off: Host names accepted besides IP addresses, localhost and --host (comma-separated; "
           "'.example.com' takes its subdomains, '*' any)"),
      list("cors_origins", c.cors_origins,
           "Origins whose pages may call the API from a browser (comma-separated scheme://host[:port], or '*'; "
           "default: none, CORS off)"),
      scalar("cors_max_age", c.cors_max_age, "Seconds a browser may cache a CORS preflight's answer"),
      scalar("read_token_secret", c.read_token_secret,
             "Signs the read tokens of started jobs (default: derived from the auth secrets; set the same on every "
             "instance to keep tokens valid when secrets change)"),
      scalar("read_token_ttl", c.read_token_ttl, "Seconds a start's read token stays valid"),
      scalar("web_ui", c.web_ui, "Serve the web playground at / (its files need no auth; its API calls do)"),
      scalar("broker", c.broker, "Broker: memory or redis"),
      scalar("redis_url", c.redis_url, "Redis server for the redis broker: redis://[:password@]host[:port][/db]"),
      scalar("redis_prefix", c.redis_prefix, "Prefix of every Redis key and channel the broker uses"),
      scalar("redis_lease", c.redis_lease,
             "Seconds after which a dead instance's running jobs are ended (error: instance lost)"),
      scalar("stream_expiration", c.stream_expiration, "Seconds a terminal stream is kept (0 = until deleted)"),
      scalar("maximum_stream_length", c.maximum_stream_length, "Most events one stream's log may hold"),
      scalar("ping_interval", c.ping_interval, "Seconds without a frame before an SSE ping"),
      scalar("observer_write_timeout", c.observer_write_timeout,
             "Seconds an observer's socket may accept nothing before it is dropped"),
      scalar("request_timeout", c.request_timeout, "Seconds for a whole request to arrive (also keep-alive idle)"),
      scalar("max_body_bytes", c.max_body_bytes, "Largest request body (larger: 413)"),
      scalar("max_header_bytes", c.max_header_bytes, "Largest request head (larger: 431)"),
      scalar("max_active_streams", c.max_active_streams, "Most pending+processing streams (more: 529)"),
      scalar("max_retained_streams", c.max_retained_streams,
             "Most streams kept, running and finished until they expire or are deleted (more: 529)"),
      scalar("max_observers", c.max_observers, "Most open observers (more: 529)"),
      scalar("max_observers_per_stream", c.max_observers_per_stream, "Most open observers of one stream (more: 529)"),
      scalar("mock_token_delay_ms", c.mock_token_delay_ms, "Delay between tokens of the default mock model"),
      scalar("upstream_max_event_bytes", c.upstream_max_event_bytes,
             "Longest SSE line or event an upstream engine may send (longer: the job fails)"),
      scalar("upstream_max_delta_bytes", c.upstream_max_delta_bytes,
             "Longest text, thinking or tool-input delta an upstream engine may send (longer: the job fails)"),
      scalar("default_model", c.default_model, "Model used for 'default' (else the first)"),
      scalar("api_key_env", c.api_key_env, "Upstream engines read their API key from this environment variable"),
      scalar("durable", c.durable, "Memory broker: keep streams in data_dir, so they survive a restart"),
      scalar("data_dir", c.data_dir, "Where the durable store keeps its files"),
      scalar("data_sync", c.data_sync, "normal (survives the process dying) or full (fsync: also power loss)"),
      scalar("data_segment_bytes", c.data_segment_bytes,
             "Size past which a segment file of data_dir is closed (space is returned a segment at a time)"),
      scalar("log_level", c.log_level, "debug, info, warn or error"),
      scalar("log_format", c.log_format, "text or json"),
  };
}

void parse_tenant_table(const toml::array& arr, Config& cfg) {
  for (const auto& e : arr) {
    const toml::table* t = e.as_table();
    if (!t) throw std::runtime_error("config: [[tenants]] entries must be tables");
    TenantConfig tc;
    tc.name = (*t)["name"].value_or(std::string());
    tc.secret = (*t)["secret"].value_or(std::string());
    tc.max_active_streams = (*t)["max_active_streams"].value_or(tc.max_active_streams);
    tc.max_retained_streams = (*t)["max_retained_streams"].value_or(tc.max_retained_streams);
    for (const auto& [k, v] : *t) {
      const std::string key(k.str());
      if (key != "name" && key != "secret" && key != "max_active_streams" && key != "max_retained_streams") {
        throw std::runtime_error("config: [[tenants]] has no key '" + key +
                                 "' (name, secret, max_active_streams, max_retained_streams)");
      }
    }
    cfg.tenants.push_back(std::move(tc));
  }
}

void parse_model_table(const toml::array& arr, Config& cfg) {
  for (const auto& e : arr) {
    const toml::table* t = e.as_table();
    if (!t) throw std::runtime_error("config: [[models]] entries must be tables");
    ModelConfig m;
    m.name = (*t)["name"].value_or(std::string());
    m.engine = (*t)["engine"].value_or(std::string());
    m.target = (*t)["target"].value_or((*t)["path"].value_or((*t)["url"].value_or(std::string())));
    m.token_delay_ms = (*t)["token_delay_ms"].value_or(m.token_delay_ms);
    m.parallel = (*t)["parallel"].value_or(m.parallel);
    m.context = (*t)["context"].value_or(m.context);
    m.threads = (*t)["threads"].value_or(m.threads);
    m.upstream_model = (*t)["upstream_model"].value_or(std::string());
    m.api_key_env = (*t)["api_key_env"].value_or(std::string());
    m.connect_timeout = (*t)["connect_timeout"].value_or(m.connect_timeout);
    m.first_byte_timeout = (*t)["first_byte_timeout"].value_or(m.first_byte_timeout);
    m.idle_timeout = (*t)["idle_timeout"].value_or(m.idle_timeout);
    if (m.parallel < 1 || m.context < 64 || m.threads < 0) {
      throw std::runtime_error("config: model '" + m.name + "': parallel >= 1, context >= 64, threads >= 0");
    }
    if (m.name.empty() || m.engine.empty())
      throw std::runtime_error("config: every [[models]] entry needs name and engine");
    cfg.models.push_back(std::move(m));
  }
}

// Turns --model specs into models, after the file's; one mock model when none is configured.
void add_model_specs(Config& cfg) {
  for (const auto& spec : cfg.model_specs) {
    const auto eq = spec.find('=');
    const auto colon = spec.find(':', eq == std::string::npos ? 0 : eq);
    if (eq == std::string::npos || eq == 0 || colon == std::string::npos) {
      throw std::runtime_error("--model " + spec + ": expected NAME=ENGINE:TARGET, e.g. echo=mock:");
    }
    ModelConfig m;
    m.name = spec.substr(0, eq);
    m.engine = spec.substr(eq + 1, colon - eq - 1);
    m.target = spec.substr(colon + 1);
    cfg.models.push_back(std::move(m));
  }
  if (cfg.models.empty()) {
    ModelConfig mock;
    mock.name = mock.engine = "mock";
    cfg.models.push_back(std::move(mock));
  }
  for (std::size_t i = 0; i < cfg.models.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (cfg.models[i].name == cfg.models[j].name)
        throw std::runtime_error("model '" + cfg.models[i].name + "' is declared twice");
    }
  }
}

// Turns --tenants specs, then the auth secrets, into tenants after the file's; decides an unset
// stream_scoping (on when a tenant has a name).
void add_tenants(Config& cfg) {
  if (!cfg.auth_secret.empty()) cfg.auth_secrets.insert(cfg.auth_secrets.begin(), cfg.auth_secret);
  for (const auto& spec : cfg.tenant_specs) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      throw std::runtime_error("--tenants " + spec + ": expected NAME=SECRET");
    }
    cfg.tenants.push_back(TenantConfig{spec.substr(0, eq), spec.substr(eq + 1)});
  }
  const bool named = std::any_of(cfg.tenants.begin(), cfg.tenants.end(), [](const auto& t) { return !t.name.empty(); });
  if (!cfg.stream_scoping) cfg.stream_scoping = named;
  for (const auto& secret : cfg.auth_secrets) cfg.tenants.push_back(TenantConfig{"", secret});
  for (std::size_t i = 0; i < cfg.tenants.size(); ++i) {
    const auto& t = cfg.tenants[i];
    if (t.secret.empty()) throw std::runtime_error("tenant '" + t.name + "' has no secret");
    if (t.max_active_streams < 0 || t.max_retained_streams < 0) {
      throw std::runtime_error("tenant '" + t.name + "': max_active_streams and max_retained_streams must be >= 0");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (t.secret == cfg.tenants[j].secret) throw std::runtime_error("the same auth secret is configured twice");
      if (!t.name.empty() && t.name == cfg.tenants[j].name) {
        throw std::runtime_error("tenant '" + t.name + "' is declared twice");
      }
    }
  }
}

// Throws for the first setting out of its range.
void check_ranges(const Config& cfg) {
  if (cfg.port < 0 || cfg.port > 65535) throw std::runtime_error("port must be 0..65535");
  if (cfg.broker != "memory" && cfg.broker != "redis") throw std::runtime_error("broker must be memory or redis");
  if (cfg.ping_interval <= 0) throw std::runtime_error("ping_interval must be > 0");
  if (cfg.maximum_stream_length < 2) throw std::runtime_error("maximum_stream_length must be at least 2");
  if (cfg.max_body_bytes <= 0) throw std::runtime_error("max_body_bytes must be > 0");
  if (cfg.upstream_max_event_bytes < 1024) throw std::runtime_error("upstream_max_event_bytes must be at least 1024");
  if (cfg.upstream_max_delta_bytes < 1) throw std::runtime_error("upstream_max_delta_bytes must be > 0");
  if (cfg.max_active_streams < 1) throw std::runtime_error("max_active_streams must be at least 1");
  if (cfg.max_retained_streams < 1) throw std::runtime_error("max_retained_streams must be at least 1");
  if (cfg.max_observers < 1) throw std::runtime_error("max_observers must be at least 1");
  if (cfg.max_observers_per_stream < 1) throw std::runtime_error("max_observers_per_stream must be at least 1");
  if (cfg.stream_expiration < 0) throw std::runtime_error("stream_expiration must be >= 0");
  if (cfg.redis_lease < 0.1) throw std::runtime_error("redis_lease must be at least 0.1 seconds");
  if (cfg.log_format != "text" && cfg.log_format != "json") throw std::runtime_error("log_format must be text or json");
  if (cfg.data_sync != "normal" && cfg.data_sync != "full")
    throw std::runtime_error("data_sync must be normal or full");
  if (auto cors = make_cors_policy(cfg.cors_origins, std::chrono::seconds(cfg.cors_max_age)); !cors) {
    throw std::runtime_error(cors.error().explanation);
  }
  if (cfg.read_token_ttl < 1) throw std::runtime_error("read_token_ttl must be at least 1 second");
  if (cfg.cors_max_age < 0) throw std::runtime_error("cors_max_age must be >= 0");
  if (cfg.data_segment_bytes < 4096) throw std::runtime_error("data_segment_bytes must be at least 4096");
  if (cfg.durable && cfg.broker == "memory" && cfg.data_dir.empty()) {
    throw std::runtime_error("data_dir must name a directory (or set durable = false)");
  }
}

}  // namespace

void add_serve_options(CLI::App& cmd, Config& cfg) {
  cmd.add_option("--config", cfg.config_file, "TOML configuration file")->envname("SPOOL_CONFIG");
  for (auto& s : settings(cfg)) s.add(cmd, flag_name(s.key), env_name(s.key));
  cmd.add_option("--model", cfg.model_specs,
                 "Add a model NAME=ENGINE:TARGET (repeatable), e.g. echo=mock: or local=llama:/models/m.gguf")
      ->envname("SPOOL_MODELS")
      ->delimiter(',');
}

void load_config_file_and_legacy_env(int argc, char** argv, Config& cfg) {
  std::string path;
  if (const char* e = std::getenv("SPOOL_CONFIG")) path = e;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) path = argv[i + 1];
    if (a.rfind("--config=", 0) == 0) path = a.substr(9);
  }
  if (!path.empty()) {
    toml::table tbl;
    try {
      tbl = toml::parse_file(path);
    } catch (const toml::parse_error& err) {
      throw std::runtime_error("config file " + path + ": " + std::string(err.description()));
    }
    auto all = settings(cfg);
    for (const auto& [k, node] : tbl) {
      const std::string key(k.str());
      if (key == "models") {
        const toml::array* arr = node.as_array();
        if (!arr) throw std::runtime_error("config: models must be an array of tables ([[models]])");
        parse_model_table(*arr, cfg);
        continue;
      }
      if (key == "tenants" && node.is_array_of_tables()) {
        parse_tenant_table(*node.as_array(), cfg);
        continue;
      }
      bool known = false;
      for (auto& s : all) {
        if (s.key == key) {
          s.from_toml(node);
          known = true;
        }
      }
      if (!known) throw std::runtime_error(fmt::format("config file {}: unknown key '{}'", path, key));
    }
  }
  // PrivateGPT's names for the same settings (SPOOL_* and flags take precedence).
  if (const char* e = std::getenv("PGPT_ASYNC_BROKER")) cfg.broker = e;
  if (const char* e = std::getenv("PGPT_ASYNC_STREAM_EXPIRATION")) cfg.stream_expiration = std::atoll(e);
  if (const char* e = std::getenv("PGPT_ASYNC_MAXIMUM_STREAM_LENGTH")) cfg.maximum_stream_length = std::atoll(e);
}

void finalize_config(Config& cfg) {
  add_model_specs(cfg);
  add_tenants(cfg);
  check_ranges(cfg);
}

std::string default_redis_url() {
  const RedisEndpoint e;
  return fmt::format("redis://{}:{}/{}", e.host, e.port, e.db);
}

http::ServerOptions server_options(const Config& cfg) {
  http::ServerOptions so;
  so.host = cfg.host;
  so.port = static_cast<std::uint16_t>(cfg.port);
  so.header_limit = static_cast<std::size_t>(cfg.max_header_bytes);
  so.body_limit = static_cast<std::size_t>(cfg.max_body_bytes);
  so.read_timeout = seconds_ms(cfg.request_timeout);
  so.write_timeout = seconds_ms(cfg.observer_write_timeout);
  return so;
}

ApiOptions api_options(const Config& cfg) {
  ApiOptions api;
  api.path_prefix = cfg.path_prefix;
  for (const auto& t : cfg.tenants) {
    api.tenants.push_back(Tenant{t.name, t.secret, static_cast<std::size_t>(t.max_active_streams),
                                 static_cast<std::size_t>(t.max_retained_streams)});
  }
  api.stream_scoping = cfg.stream_scoping.value_or(api.stream_scoping);
  api.cors = make_cors_policy(cfg.cors_origins, std::chrono::seconds(cfg.cors_max_age)).value();  // checked
  api.origins = OriginPolicy{cfg.host, cfg.allowed_hosts, api.cors.origins};
  api.web_ui = cfg.web_ui;
  api.read_token_key = cfg.read_token_secret;
  api.read_token_ttl = std::chrono::seconds(cfg.read_token_ttl);
  api.ping_interval = seconds_ms(cfg.ping_interval);
  api.broker_name = cfg.broker;
  api.max_observers = static_cast<std::size_t>(cfg.max_observers);
  api.max_observers_per_stream = static_cast<std::size_t>(cfg.max_observers_per_stream);
  return api;
}

JobServiceOptions job_service_options(const Config& cfg, boost::asio::any_io_executor engine_executor) {
  JobServiceOptions jo;
  jo.maximum_stream_length = static_cast<std::uint64_t>(cfg.maximum_stream_length);
  jo.max_active_streams = static_cast<std::size_t>(cfg.max_active_streams);
  jo.max_retained_streams = static_cast<std::size_t>(cfg.max_retained_streams);
  jo.engine_executor = std::move(engine_executor);
  return jo;
}

MemoryBrokerOptions memory_broker_options(const Config& cfg, StreamStore* store) {
  MemoryBrokerOptions mo;
  mo.stream_expiration = std::chrono::seconds(cfg.stream_expiration);
  mo.store = store;
  return mo;
}

Result<RedisBrokerOptions> redis_broker_options(const Config& cfg) {
  auto endpoint = RedisEndpoint::parse(cfg.redis_url);
  if (!endpoint) return endpoint.error();
  RedisBrokerOptions ro;
  ro.endpoint = *endpoint;
  ro.prefix = cfg.redis_prefix;
  ro.stream_expiration = std::chrono::seconds(cfg.stream_expiration);
  ro.lease = seconds_ms(cfg.redis_lease);
  return ro;
}

LogStoreOptions log_store_options(const Config& cfg) {
  LogStoreOptions o;
  o.dir = cfg.data_dir;
  o.fsync_each = cfg.data_sync == "full";
  o.segment_bytes = static_cast<std::uint64_t>(cfg.data_segment_bytes);
  return o;
}

Result<EngineSpec> engine_spec(const Config& cfg, const ModelConfig& m) {
  EngineSpec spec;
  spec.kind = m.engine;
  spec.mock.token_delay = std::chrono::milliseconds(m.token_delay_ms >= 0 ? m.token_delay_ms : cfg.mock_token_delay_ms);
  spec.llama.model_path = m.target;
  spec.llama.parallel = static_cast<int>(m.parallel);
  spec.llama.context = static_cast<int>(m.context);
  spec.llama.threads = static_cast<int>(m.threads);
  if (!is_upstream_kind(m.engine)) return spec;
  UpstreamOptions& uo = spec.upstream;
  uo.base_url = m.target;
  uo.upstream_model = m.upstream_model.empty() ? m.name : m.upstream_model;
  const std::string& key_env = m.api_key_env.empty() ? cfg.api_key_env : m.api_key_env;
  if (!key_env.empty()) {
    const char* key = std::getenv(key_env.c_str());
    if (!key)
      return make_error(Errc::invalid_request,
                        "model '" + m.name + "': environment variable " + key_env + " is not set");
    uo.api_key = key;
  }
  uo.connect_timeout = seconds_ms(m.connect_timeout);
  uo.first_byte_timeout = seconds_ms(m.first_byte_timeout);
  uo.idle_timeout = seconds_ms(m.idle_timeout);
  uo.limits.max_event_bytes = static_cast<std::size_t>(cfg.upstream_max_event_bytes);
  uo.limits.max_delta_bytes = static_cast<std::size_t>(cfg.upstream_max_delta_bytes);
  return spec;
}

}  // namespace spool
