// Counters behind GET /metrics (Prometheus text format).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace spool {

// Process-wide counters; every method is thread-safe.
class Metrics {
 public:
  // One answered request on `route` (a route name, not the raw path) with `status`.
  void request(std::string_view route, int status);
  // Events and bytes written to observers.
  void sent(std::uint64_t events, std::uint64_t bytes) {
    events_sent_.fetch_add(events, std::memory_order_relaxed);
    bytes_sent_.fetch_add(bytes, std::memory_order_relaxed);
  }
  // One cancel answered after `micros` from request to terminal events.
  void cancel_latency(std::uint64_t micros);
  // One broker call behind a route took `micros`.
  void broker_latency(std::uint64_t micros) {
    broker_calls_.fetch_add(1, std::memory_order_relaxed);
    broker_micros_.fetch_add(micros, std::memory_order_relaxed);
  }
  // Appends the counters in Prometheus text format.
  void render(std::string& out) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::atomic<std::uint64_t> events_sent_{0}, bytes_sent_{0};
  std::atomic<std::uint64_t> cancels_{0}, cancel_micros_{0};
  std::atomic<std::uint64_t> broker_calls_{0}, broker_micros_{0};
};

}  // namespace spool
