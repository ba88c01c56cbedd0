// Small helpers for the load client that need no networking: command-line options, clocks,
// /proc sampling of the server under test, percentiles, and a one-line JSON writer.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// --key value pairs (and bare --flag, stored as "1").
class Options {
 public:
  bool parse(int argc, char** argv, std::string& error);
  bool has(const std::string& k) const { return kv_.count(k) != 0; }
  std::string str(const std::string& k, const std::string& def) const;
  long long num(const std::string& k, long long def) const;
  double real(const std::string& k, double def) const;
  bool flag(const std::string& k) const;
  // Keys that were given but never read: most likely typos.
  std::vector<std::string> unused() const;

 private:
  std::map<std::string, std::string> kv_;
  mutable std::map<std::string, bool> used_;
};

// Monotonic nanoseconds since an arbitrary fixed point (process start).
std::int64_t now_ns();
// A CLOCK_REALTIME instant (ns since the epoch) on the now_ns() clock.
std::int64_t from_realtime_ns(std::int64_t realtime_ns);

// CPU time and resident memory of the server under test. For a process that has children
// (nginx: a master and its workers) the figures are the sum over the process and its direct
// children, re-discovered at each sample.
class ProcWatch {
 public:
  explicit ProcWatch(int pid) : pid_(pid) {}
  bool enabled() const { return pid_ > 0; }
  int pid() const { return pid_; }
  // CPU time in seconds; < 0 if unreadable. Two sources are sampled: the sum over all threads
  // of /proc/PID/task/TID/schedstat (nanoseconds, but a thread that exits takes its time
  // with it) and utime + stime of /proc/PID/stat (includes exited threads, but counts in
  // clock ticks, usually 10 ms). cpu_delta() prefers the precise one unless threads exited.
  struct CpuSample {
    double stat_s = -1, sched_s = -1;
  };
  CpuSample cpu_sample() const;
  static double cpu_delta(const CpuSample& a, const CpuSample& b);
  double cpu_seconds() const { return cpu_sample().stat_s; }
  // VmRSS in KiB; < 0 if unreadable.
  long rss_kib() const;
  std::vector<int> pids() const;

 private:
  int pid_;
};

// This process's own user + system CPU seconds.
double self_cpu_seconds();

// Raises RLIMIT_NOFILE to its hard maximum; returns the soft limit now in force.
long raise_nofile_limit();

struct Percentiles {
  std::size_t n = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;  // in the unit asked for
};
// Nearest-rank percentiles of nanosecond samples, converted by dividing by `unit_ns`.
// Sorts the vector in place.
Percentiles percentiles(std::vector<std::int64_t>& samples_ns, double unit_ns);

// Builds one JSON object on one line, keys in insertion order.
class JsonLine {
 public:
  JsonLine& str(std::string_view k, std::string_view v);
  JsonLine& num(std::string_view k, long long v);
  JsonLine& num(std::string_view k, double v, int decimals = 3);
  JsonLine& boolean(std::string_view k, bool v);
  JsonLine& null(std::string_view k);
  JsonLine& raw(std::string_view k, std::string_view json);  // an already-serialized value
  // Percentiles as k_p50_ms, k_p90_ms, k_p99_ms, k_max_ms, k_mean_ms (null when n == 0).
  JsonLine& pct(std::string_view prefix, const Percentiles& p, std::string_view unit);
  std::string done() const { return s_ + "}"; }

 private:
  void key(std::string_view k);
  std::string s_ = "{";
};

std::string json_escape(std::string_view s);

// Machine description: nproc, CPU model, memory, kernel.
std::string machine_json();

}  // namespace bench
