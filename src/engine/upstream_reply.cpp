#include "engine/upstream_reply.hpp"

#include <boost/json/serialize.hpp>

#include <fmt/format.h>

#include <cmath>

namespace spool {

std::optional<std::int64_t> whole_number(const boost::json::value& v, std::int64_t max) {
  if (v.is_int64()) {
    const std::int64_t n = v.get_int64();
    if (n >= 0 && n <= max) return n;
  } else if (v.is_uint64()) {
    const std::uint64_t n = v.get_uint64();
    if (n <= static_cast<std::uint64_t>(max)) return static_cast<std::int64_t>(n);
  } else if (v.is_double()) {
    const double d = v.get_double();
    if (std::isfinite(d) && d >= 0 && d <= static_cast<double>(max) && d == std::floor(d)) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

void UpstreamReply::fail(std::string explanation) {
  if (done_) return;
  done_ = true;
  sink_.fail(make_error(Errc::upstream, std::move(explanation)));
}

std::optional<std::int64_t> UpstreamReply::usage_value(const boost::json::value& v, std::string_view field) {
  if (auto n = whole_number(v)) return n;
  const std::string shown = boost::json::serialize(v);
  fail(fmt::format("upstream sent an invalid usage value: {} = {} (expected a whole number of tokens from 0 to {})",
                   field, shown.substr(0, 64), kMaxUpstreamCount));
  return std::nullopt;
}

bool UpstreamReply::delta_fits(std::string_view delta, std::string_view kind) {
  if (delta.size() <= limits_.max_delta_bytes) return true;
  fail(fmt::format("upstream sent a {} delta of {} bytes, more than upstream_max_delta_bytes ({})", kind, delta.size(),
                   limits_.max_delta_bytes));
  return false;
}

}  // namespace spool
