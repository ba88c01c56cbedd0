#include "core/log.hpp"

#include "core/utf8.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>

namespace spool {
namespace {

// Marks a payload made by log_event: kMark msg (kSep key kSep value)*, where a kMark, kSep or kEsc
// inside msg, a key or a value is written as kEsc followed by that byte (so no text forges a field).
constexpr char kMark = '\x1e';
constexpr char kSep = '\x1f';
constexpr char kEsc = '\x1d';

// A JSON string of `s`: control characters escaped, ill-formed UTF-8 replaced by U+FFFD.
std::string json_string(std::string_view s) { return boost::json::serialize(boost::json::string(to_valid_utf8(s))); }

// True when `s` has a byte that must not appear bare in a text log line (a control character).
bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

void append_escaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    if (c == kMark || c == kSep || c == kEsc) out.push_back(kEsc);
    out.push_back(c);
  }
}

// The next escaped piece of `p` up to an unescaped kSep (consumed) or the end, unescaped.
std::string next_piece(std::string_view& p) {
  std::string out;
  std::size_t i = 0;
  for (; i < p.size(); ++i) {
    if (p[i] == kEsc && i + 1 < p.size()) {
      out.push_back(p[++i]);
    } else if (p[i] == kSep) {
      break;
    } else {
      out.push_back(p[i]);
    }
  }
  p.remove_prefix(i < p.size() ? i + 1 : i);
  return out;
}

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
std::string split_payload(std::string_view p, F&& on_field) {
  if (p.empty() || p.front() != kMark) return std::string(p);
  p.remove_prefix(1);
  std::string msg = next_piece(p);
  while (!p.empty()) {
    const std::string key = next_piece(p);
    const std::string value = next_piece(p);
    on_field(key, value);
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
      const std::string msg = split_payload(payload, [&](std::string_view k, std::string_view v) {
        fields += ',' + json_string(k) + ':' + json_string(v);
      });
      line = "{\"time\":\"" + utc_time(m.time) + "\",\"level\":" + json_string(level) + ",\"msg\":" + json_string(msg) +
             fields + "}\n";
    } else {
      std::string fields;
      const std::string msg = split_payload(payload, [&](std::string_view k, std::string_view v) {
        // Quoted (and escaped) when it could be read as more than one value: no text forges a field or a line.
        const bool quote = v.empty() || v.find_first_of(" \"=\\") != std::string_view::npos || has_control(v);
        fields += ' ';
        fields += has_control(k) ? json_string(k) : std::string(k);
        fields += '=';
        fields += quote ? json_string(v) : to_valid_utf8(v);
      });
      const std::string shown = has_control(msg) ? json_string(msg) : to_valid_utf8(msg);
      line = utc_time(m.time) + " [" + std::string(level) + "] " + shown + fields + "\n";
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
  append_escaped(payload, msg);
  for (const auto& [k, v] : fields) {
    payload += kSep;
    append_escaped(payload, k);
    payload += kSep;
    append_escaped(payload, v);
  }
  spdlog::log(level, "{}", payload);
}

}  // namespace spool
