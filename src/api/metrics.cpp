#include "api/metrics.hpp"

#include <fmt/format.h>

namespace spool {

void Metrics::request(std::string_view route, int status) {
  std::lock_guard lk(mu_);
  ++requests_[{std::string(route), status}];
}

void Metrics::cancel_latency(std::uint64_t micros) {
  cancels_.fetch_add(1, std::memory_order_relaxed);
  cancel_micros_.fetch_add(micros, std::memory_order_relaxed);
}

void Metrics::render(std::string& out) const {
  out += "# HELP spool_requests_total HTTP requests answered, by route and status.\n";
  out += "# TYPE spool_requests_total counter\n";
  {
    std::lock_guard lk(mu_);
    for (const auto& [k, n] : requests_) {
      out += fmt::format("spool_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", k.first, k.second, n);
    }
  }
  out += "# HELP spool_events_sent_total Stored events written to observers.\n# TYPE spool_events_sent_total counter\n";
  out += fmt::format("spool_events_sent_total {}\n", events_sent_.load());
  out +=
      "# HELP spool_bytes_sent_total Bytes of event frames written to observers.\n# TYPE spool_bytes_sent_total "
      "counter\n";
  out += fmt::format("spool_bytes_sent_total {}\n", bytes_sent_.load());
  out +=
      "# HELP spool_cancel_seconds Time from a cancel request to its terminal events.\n# TYPE spool_cancel_seconds "
      "summary\n";
  out += fmt::format("spool_cancel_seconds_count {}\nspool_cancel_seconds_sum {:.6f}\n", cancels_.load(),
                     static_cast<double>(cancel_micros_.load()) / 1e6);
  out +=
      "# HELP spool_broker_seconds Time of the broker calls behind /status and the list.\n# TYPE spool_broker_seconds "
      "summary\n";
  out += fmt::format("spool_broker_seconds_count {}\nspool_broker_seconds_sum {:.6f}\n", broker_calls_.load(),
                     static_cast<double>(broker_micros_.load()) / 1e6);
}

}  // namespace spool
