#include "util.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace bench {

// ---------------------------------------------------------------------------------------------
// Options

bool Options::parse(int argc, char** argv, std::string& error) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || a.size() < 3) {
      error = "unexpected argument: " + a;
      return false;
    }
    std::string k = a.substr(2), v = "1";
    if (auto eq = k.find('='); eq != std::string::npos) {
      v = k.substr(eq + 1);
      k = k.substr(0, eq);
    } else if (i + 1 < argc && std::string_view(argv[i + 1]).rfind("--", 0) != 0) {
      v = argv[++i];
    }
    kv_[k] = v;
  }
  return true;
}

std::string Options::str(const std::string& k, const std::string& def) const {
  used_[k] = true;
  auto it = kv_.find(k);
  return it == kv_.end() ? def : it->second;
}

long long Options::num(const std::string& k, long long def) const {
  used_[k] = true;
  auto it = kv_.find(k);
  if (it == kv_.end()) return def;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (!end || *end) {
    std::fprintf(stderr, "spool_bench: --%s wants an integer, got '%s'\n", k.c_str(), it->second.c_str());
    std::exit(2);
  }
  return v;
}

double Options::real(const std::string& k, double def) const {
  used_[k] = true;
  auto it = kv_.find(k);
  if (it == kv_.end()) return def;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (!end || *end) {
    std::fprintf(stderr, "spool_bench: --%s wants a number, got '%s'\n", k.c_str(), it->second.c_str());
    std::exit(2);
  }
  return v;
}

bool Options::flag(const std::string& k) const {
  used_[k] = true;
  auto it = kv_.find(k);
  return it != kv_.end() && it->second != "0" && it->second != "false";
}

std::vector<std::string> Options::unused() const {
  std::vector<std::string> out;
  for (auto& [k, v] : kv_)
    if (!used_.count(k)) out.push_back(k);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Clocks and /proc

std::int64_t now_ns() {
  static const auto origin = std::chrono::steady_clock::now();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - origin).count();
}

std::int64_t from_realtime_ns(std::int64_t realtime_ns) {
  static const std::int64_t offset = [] {
    const std::int64_t steady = now_ns();
    const std::int64_t real =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    return real - steady;
  }();
  return realtime_ns - offset;
}

namespace {

// Fields of /proc/<pid>/stat after the parenthesised command name (which may hold spaces).
bool read_stat_fields(int pid, std::vector<std::string>& fields) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!f || !std::getline(f, s)) return false;
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return false;
  std::istringstream in(s.substr(rp + 1));
  fields.clear();
  for (std::string t; in >> t;) fields.push_back(t);
  return fields.size() > 13;
}

}  // namespace

std::vector<int> ProcWatch::pids() const {
  std::vector<int> out;
  if (pid_ <= 0) return out;
  out.push_back(pid_);
  DIR* d = opendir("/proc");
  if (!d) return out;
  std::vector<std::string> fields;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long p = std::strtol(e->d_name, &end, 10);
    if (!end || *end || p <= 0 || p == pid_) continue;
    // fields[0] = state, fields[1] = ppid
    if (read_stat_fields(static_cast<int>(p), fields) && std::atoi(fields[1].c_str()) == pid_)
      out.push_back(static_cast<int>(p));
  }
  closedir(d);
  return out;
}

ProcWatch::CpuSample ProcWatch::cpu_sample() const {
  CpuSample s;
  if (pid_ <= 0) return s;
  static const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  double stat_total = 0, sched_total = 0;
  bool any = false, sched_ok = true;
  std::vector<std::string> fields;
  for (int p : pids()) {
    // utime and stime are fields 14 and 15 of the file, 11 and 12 after the name.
    if (!read_stat_fields(p, fields)) continue;
    stat_total += (std::strtod(fields[11].c_str(), nullptr) + std::strtod(fields[12].c_str(), nullptr)) / tick;
    any = true;
    const std::string task_dir = "/proc/" + std::to_string(p) + "/task";
    DIR* d = opendir(task_dir.c_str());
    if (!d) {
      sched_ok = false;
      continue;
    }
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      std::ifstream f(task_dir + "/" + e->d_name + "/schedstat");
      unsigned long long ns = 0;
      if (f >> ns)
        sched_total += static_cast<double>(ns) / 1e9;
      else
        sched_ok = false;
    }
    closedir(d);
  }
  if (any) s.stat_s = stat_total;
  if (any && sched_ok) s.sched_s = sched_total;
  return s;
}

double ProcWatch::cpu_delta(const CpuSample& a, const CpuSample& b) {
  if (a.stat_s < 0 || b.stat_s < 0) return -1;
  const double by_stat = b.stat_s - a.stat_s;
  if (a.sched_s < 0 || b.sched_s < 0) return by_stat;
  const double by_sched = b.sched_s - a.sched_s;
  // Threads that exited in between take their schedstat time with them: then the tick-based
  // figure is clearly larger (beyond its two-tick rounding), and it is the one to trust.
  static const double tick = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  if (by_sched < 0 || by_stat > by_sched * 1.05 + 2 * tick) return by_stat;
  return by_sched;
}

long ProcWatch::rss_kib() const {
  if (pid_ <= 0) return -1;
  long total = 0;
  bool any = false;
  for (int p : pids()) {
    std::ifstream f("/proc/" + std::to_string(p) + "/status");
    for (std::string line; std::getline(f, line);) {
      if (line.rfind("VmRSS:", 0) == 0) {
        total += std::strtol(line.c_str() + 6, nullptr, 10);
        any = true;
        break;
      }
    }
  }
  return any ? total : -1;
}

double self_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

long raise_nofile_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? (1L << 30) : static_cast<long>(rl.rlim_cur);
}

// ---------------------------------------------------------------------------------------------
// Percentiles and JSON

Percentiles percentiles(std::vector<std::int64_t>& v, double unit_ns) {
  Percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto rank = [&](double q) {
    std::size_t idx = static_cast<std::size_t>(std::ceil(q / 100.0 * static_cast<double>(v.size())));
    if (idx > 0) --idx;
    if (idx >= v.size()) idx = v.size() - 1;
    return static_cast<double>(v[idx]) / unit_ns;
  };
  p.p50 = rank(50);
  p.p90 = rank(90);
  p.p99 = rank(99);
  p.max = static_cast<double>(v.back()) / unit_ns;
  long double sum = 0;
  for (auto x : v) sum += x;
  p.mean = static_cast<double>(sum / v.size()) / unit_ns;
  return p;
}

std::string json_escape(std::string_view s) {
  std::string o;
  o.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        o += "\\\"";
        break;
      case '\\':
        o += "\\\\";
        break;
      case '\n':
        o += "\\n";
        break;
      case '\r':
        o += "\\r";
        break;
      case '\t':
        o += "\\t";
        break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o;
}

void JsonLine::key(std::string_view k) {
  if (s_.size() > 1) s_ += ',';
  s_ += '"';
  s_ += json_escape(k);
  s_ += "\":";
}

JsonLine& JsonLine::str(std::string_view k, std::string_view v) {
  key(k);
  s_ += '"';
  s_ += json_escape(v);
  s_ += '"';
  return *this;
}

JsonLine& JsonLine::num(std::string_view k, long long v) {
  key(k);
  s_ += std::to_string(v);
  return *this;
}

JsonLine& JsonLine::num(std::string_view k, double v, int decimals) {
  key(k);
  if (!std::isfinite(v)) {
    s_ += "null";
    return *this;
  }
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  s_ += b;
  return *this;
}

JsonLine& JsonLine::boolean(std::string_view k, bool v) {
  key(k);
  s_ += v ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::null(std::string_view k) {
  key(k);
  s_ += "null";
  return *this;
}

JsonLine& JsonLine::raw(std::string_view k, std::string_view json) {
  key(k);
  s_ += json;
  return *this;
}

JsonLine& JsonLine::pct(std::string_view prefix, const Percentiles& p, std::string_view unit) {
  std::string base(prefix);
  std::string u(unit);
  if (p.n == 0) {
    for (const char* s : {"_p50_", "_p90_", "_p99_", "_max_", "_mean_"}) {
      std::string k = base;
      k += s;
      k += u;
      null(k);
    }
    return *this;
  }
  num(base + "_p50_" + u, p.p50);
  num(base + "_p90_" + u, p.p90);
  num(base + "_p99_" + u, p.p99);
  num(base + "_max_" + u, p.max);
  num(base + "_mean_" + u, p.mean);
  return *this;
}

std::string machine_json() {
  JsonLine j;
  j.str("scenario", "machine");
  j.num("nproc", static_cast<long long>(std::thread::hardware_concurrency()));
  std::string model, mem;
  {
    std::ifstream f("/proc/cpuinfo");
    for (std::string line; std::getline(f, line);) {
      if (line.rfind("model name", 0) == 0) {
        auto c = line.find(':');
        if (c != std::string::npos) model = line.substr(c + 1);
        while (!model.empty() && model.front() == ' ') model.erase(model.begin());
        break;
      }
    }
  }
  long mem_kib = -1;
  {
    std::ifstream f("/proc/meminfo");
    for (std::string line; std::getline(f, line);) {
      if (line.rfind("MemTotal:", 0) == 0) {
        mem_kib = std::strtol(line.c_str() + 9, nullptr, 10);
        break;
      }
    }
  }
  j.str("cpu_model", model);
  j.num("mem_total_mib", static_cast<long long>(mem_kib / 1024));
  utsname u{};
  if (uname(&u) == 0) {
    j.str("kernel", std::string(u.sysname) + " " + u.release);
    j.str("arch", u.machine);
  }
  j.num("nofile_limit", static_cast<long long>(raise_nofile_limit()));
  return j.done();
}

}  // namespace bench
