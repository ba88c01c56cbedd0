#include "core/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <chrono>
#include <ctime>

namespace spool {
namespace {

// Marks a payload made by log_event: kMark msg (kSep key kSep value)*.
constexpr char kMark = '\x1e';
constexpr char kSep = '\x1f';

std::string json_string(std::string_view s) { return boost::json::serialize(boost::json::string(s)); }

// "2026-11-24T23:28:05.123456Z"
std::string utc_time(spdlog::log_clock::time_point t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(buf, n) + fmt::format(".{:06d}Z", us % 1000000);
}

// Splits a log_event payload into its message and fields; a plain payload is all message.
template <class F>
std::string_view split_payload(std::string_view p, F&& on_field) {
  if (p.empty() || p.front() != kMark) return p;
  p.remove_prefix(1);
  const auto first = p.find(kSep);
  const std::string_view msg = p.substr(0, first);
  std::string_view rest = first == std::string_view::npos ? std::string_view{} : p.substr(first + 1);
  while (!rest.empty()) {
    const auto k_end = rest.find(kSep);
    if (k_end == std::string_view::npos) break;
    const std::string_view key = rest.substr(0, k_end);
    rest.remove_prefix(k_end + 1);
    const auto v_end = rest.find(kSep);
    const std::string_view value = rest.substr(0, v_end);
    on_field(key, value);
    rest = v_end == std::string_view::npos ? std::string_view{} : rest.substr(v_end + 1);
  }
  return msg;
}

class Formatter final : public spdlog::formatter {
 public:
  explicit Formatter(bool json) : json_(json) {}

  void format(const spdlog::details::log_msg& m, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(m.payload.data(), m.payload.size());
    const auto lv = spdlog::level::to_string_view(m.level);
    const std::string_view level(lv.data(), lv.size());
    std::string line;
    if (json_) {
      std::string fields;
      const std::string_view msg = split_payload(payload, [&](std::string_view k, std::string_view v) {
        fields += ',' + json_string(k) + ':' + json_string(v);
      });
      line = "{\"time\":\"" + utc_time(m.time) + "\",\"level\":" + json_string(level) + ",\"msg\":" + json_string(msg) +
             fields + "}\n";
    } else {
      std::string fields;
      const std::string_view msg = split_payload(payload, [&](std::string_view k, std::string_view v) {
        const bool quote = v.empty() || v.find_first_of(" \"=\t\n") != std::string_view::npos;
        fields += ' ';
        fields += k;
        fields += '=';
        fields += quote ? json_string(v) : std::string(v);
      });
      line = utc_time(m.time) + " [" + std::string(level) + "] " + std::string(msg) + fields + "\n";
    }
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<Formatter>(json_); }

 private:
  bool json_;
};

}  // namespace

void setup_logging(const std::string& level, const std::string& format) {
  spdlog::set_default_logger(spdlog::stderr_logger_mt("spool"));  // stdout carries only the listening line
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::set_formatter(std::make_unique<Formatter>(format == "json"));
}

bool log_enabled(spdlog::level::level_enum level) { return spdlog::should_log(level); }

void log_event(spdlog::level::level_enum level, std::string_view msg, std::initializer_list<LogField> fields) {
  if (!log_enabled(level)) return;
  std::string payload(1, kMark);
  payload += msg;
  for (const auto& [k, v] : fields) {
    payload += kSep;
    payload += k;
    payload += kSep;
    payload += v;
  }
  spdlog::log(level, "{}", payload);
}

}  // namespace spool
