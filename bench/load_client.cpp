// spool_bench: load client for Spool (and, for comparison, nginx + nchan).
//
// One invocation runs one scenario against one server and prints one JSON line to stdout;
// progress and problems go to stderr. See bench/README.md for the scenarios and figures.
//
//   spool_bench --scenario fanout --target spool --host 127.0.0.1 --port 8080 --server-pid 1234
//               --observers 1000 --tokens 1000 --token-delay-ms 20
//
// Spool API used (SPEC §1.1-§1.4): POST /v1/messages/async?message_id=ID starts a job whose
// mock engine echoes the prompt's words, one content_block_delta per word;
// GET /v1/messages/async/ID/stream replays the log then follows it live, and the server
// closes the connection after message_stop; POST .../cancel; GET .../status.
//
// nchan: the client publishes the same event sequence itself (POST /pub/ID, event type in
// X-EventSource-Event), and subscribers read GET /sub/ID as EventSource from the oldest
// buffered message. nchan never closes a subscriber, so they close after message_stop.
//
// Latency in `fanout` (field latency_method):
//  * "spread_from_first_observer" (both targets): for each content_block_delta k, the earliest
//    arrival over all observers is taken as its reference; every observer's arrival minus that
//    reference is one sample. Spool produces events inside the server, so its publish instant
//    cannot be seen from outside; the first arrival is the closest observable upper bound of it.
//    The figure is therefore the fan-out delay (how much later than the first observer the
//    others get an event), i.e. publish->delivery latency minus the publish->first-delivery
//    time (one loopback write on an unloaded server, tens of microseconds). Only events whose
//    first arrival is after every observer was attached (+ max(50 ms, 2 token delays)) count,
//    so replayed backlog of late attachers is not mistaken for live delivery.
//  * "publish_latency" (nchan only, extra fields publish_latency_*): the client publishes, so
//    arrival minus the instant just before the publishing POST was written is exact.
//  Arrival times are the kernel's receive timestamps (SO_TIMESTAMPNS), so they do not include
//  the time the client's single thread, busy with a thousand sockets, takes to get to a socket.

#include <sys/resource.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <climits>
#include <csignal>
#include <cstdio>
#include <limits>
#include <map>
#include <random>

#include "net.hpp"

namespace bench {
namespace {

std::string hex_tag(int chars) {
  static std::mt19937_64 rng{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < chars; ++i) s += digits[rng() & 15];
  return s;
}

// Per-run bookkeeping: options, the watched server process, CPU baselines.
struct Run {
  Run(Ctx& ctx, const Options& opts, int server_pid, int server2_pid)
      : c(ctx), o(opts), srv(server_pid), srv2(server2_pid) {}
  Ctx& c;
  const Options& o;
  ProcWatch srv;
  ProcWatch srv2;  // a second instance (--server-pid2), added to the server CPU
  ProcWatch::CpuSample cpu0, cpu0_2;
  double self0 = 0;

  void cpu_start() {
    cpu0 = srv.cpu_sample();
    cpu0_2 = srv2.cpu_sample();
    self0 = self_cpu_seconds();
  }
  // Server CPU seconds since cpu_start() (both instances when there are two), < 0 when unknown.
  double cpu_used() const {
    const double a = ProcWatch::cpu_delta(cpu0, srv.cpu_sample());
    if (!srv2.enabled() || a < 0) return a;
    const double b = ProcWatch::cpu_delta(cpu0_2, srv2.cpu_sample());
    return b < 0 ? -1 : a + b;
  }
  JsonLine line(std::string_view scenario) const {
    JsonLine j;
    j.str("scenario", scenario).str("target", c.nchan ? "nchan" : "spool");
    return j;
  }
};

// Adds events, seconds, events_per_s, server CPU and client CPU figures.
void add_throughput(Run& R, JsonLine& j, std::uint64_t events, std::int64_t ns, double server_cpu_s) {
  double secs = static_cast<double>(ns) / 1e9;
  j.num("events", static_cast<long long>(events));
  j.num("seconds", secs, 4);
  j.num("events_per_s", secs > 0 ? static_cast<double>(events) / secs : 0.0, 1);
  if (server_cpu_s >= 0) {
    j.num("server_cpu_s", server_cpu_s, 3);
    if (events > 0)
      j.num("server_cpu_us_per_event", server_cpu_s * 1e6 / static_cast<double>(events), 3);
    else
      j.null("server_cpu_us_per_event");
  } else {
    j.null("server_cpu_s").null("server_cpu_us_per_event");
  }
  j.num("client_cpu_s", self_cpu_seconds() - R.self0, 3);
}

// Summary of a set of observers: counts and the first error seen.
struct ObsSummary {
  std::uint64_t events = 0, deltas = 0, bytes = 0, pings = 0;
  long attached = 0, complete = 0, failed = 0, aborted = 0, late_close = 0, error_events = 0;
  std::string first_error;
};

ObsSummary summarize(const std::vector<ObsResult>& res, long expect_deltas) {
  ObsSummary s;
  for (const ObsResult& r : res) {
    s.events += r.events;
    s.deltas += r.deltas;
    s.bytes += r.bytes;
    s.pings += r.pings;
    s.attached += r.attached && r.status == 200;
    s.failed += r.failed;
    s.aborted += r.aborted;
    s.late_close += r.late_close;
    s.error_events += r.got_error;
    if (r.got_stop && (expect_deltas < 0 || static_cast<long>(r.deltas) == expect_deltas)) ++s.complete;
    if (s.first_error.empty() && !r.error.empty()) s.first_error = r.error;
  }
  return s;
}

void add_summary(JsonLine& j, const ObsSummary& s) {
  j.num("observers_attached", static_cast<long long>(s.attached));
  j.num("observers_complete", static_cast<long long>(s.complete));
  j.num("observers_failed", static_cast<long long>(s.failed));
  j.num("observers_late_close", static_cast<long long>(s.late_close));
  j.num("deltas", static_cast<long long>(s.deltas));
  j.num("bytes", static_cast<long long>(s.bytes));
  if (s.error_events) j.num("error_events", static_cast<long long>(s.error_events));
  if (!s.first_error.empty()) j.str("first_error", s.first_error);
}

int finish(Run& R, JsonLine& j, bool ok, const std::string& error = {}) {
  if (R.c.timed_out) {
    ok = false;
    j.boolean("timed_out", true);
  }
  j.boolean("ok", ok);
  if (!error.empty()) j.str("error", error);
  std::printf("%s\n", j.done().c_str());
  std::fflush(stdout);
  return ok ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Targets

// The event stream a mock job with `words` prompt words produces; nchan gets the same bytes.
struct EventLog {
  std::vector<std::pair<std::string, std::string>> head, tail;  // (type, data)
  std::string block;
  std::string delta(long k) const {  // k from 1
    return R"({"type":"content_block_delta","index":0,"block_id":")" + block +
           R"(","delta":{"type":"text_delta","text":"w)" + std::to_string(k) + R"( "}})";
  }
};

EventLog make_log(long words) {
  EventLog l;
  l.block = "block_" + hex_tag(32);
  std::string ts = "2025-01-01T00:00:00.000000Z";
  std::string n = std::to_string(words);
  l.head.push_back(
      {"message_start",
       R"({"type":"message_start","message":{"id":"msg_)" + hex_tag(32) +
           R"(","type":"message","role":"assistant","content":[],"model":"bench","usage":{"input_tokens":)" + n +
           R"(,"output_tokens":0}}})"});
  l.head.push_back({"content_block_start", R"({"type":"content_block_start","index":0,"block_id":")" + l.block +
                                               R"(","content_block":{"type":"text","start_timestamp":")" + ts +
                                               R"(","text":""}})"});
  l.tail.push_back({"content_block_stop", R"({"type":"content_block_stop","stop_timestamp":")" + ts +
                                              R"(","index":0,"block_id":")" + l.block + R"("})"});
  l.tail.push_back(
      {"message_delta",
       R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":)" +
           n + R"(,"output_tokens":)" + n + "}}"});
  l.tail.push_back({"message_stop", R"({"type":"message_stop"})"});
  return l;
}

std::string chat_body(Ctx& c, long words, long max_tokens) {
  std::string s = R"({"model":")" + json_escape(c.model) + R"(","messages":[{"role":"user","content":")";
  s.reserve(s.size() + static_cast<std::size_t>(words) * 8 + 64);
  for (long i = 1; i <= words; ++i) {
    if (i > 1) s += ' ';
    s += 'w';
    s += std::to_string(i);
  }
  s += R"("}],"max_tokens":)" + std::to_string(max_tokens) + "}";
  return s;
}

std::string spool_path(Ctx& c, const std::string& id, std::string_view tail) {
  return c.prefix + "/v1/messages/async/" + id + std::string(tail);
}

ObsSpec observe_spec(Ctx& c, const std::string& id) {
  ObsSpec s;
  if (c.nchan) {
    s.target = c.nchan_sub + id;
    s.close_on_stop = true;
  } else {
    s.target = spool_path(c, id, "/stream");
  }
  return s;
}

awaitable<HttpResponse> create_job(Ctx& c, HttpClient& api, std::string id, std::string body) {
  std::string target = c.prefix + "/v1/messages/async?message_id=" + id;
  co_return co_await api.request("POST", target, std::move(body));
}

// Polls the status route until the job is terminal. Returns the status ("timeout" or
// "error: ..." when it cannot tell); *events gets metadata.events when the server reports it.
awaitable<std::string> wait_terminal(Ctx& c, HttpClient& api, std::string id, double timeout_s, long* events) {
  std::int64_t until = now_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
  double pause = 20;
  while (!c.aborting) {
    HttpResponse r = co_await api.request("GET", spool_path(c, id, "/status"), "");
    if (!r.ok()) co_return "error: " + r.error;
    if (r.status != 200) co_return "error: status HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200);
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(r.body, ec);
    if (ec || !v.is_object()) co_return "error: status body is not JSON";
    auto& o = v.as_object();
    std::string st;
    if (auto* s = o.if_contains("status"); s && s->is_string()) st = std::string(s->as_string());
    if (events) {
      if (auto* m = o.if_contains("metadata"); m && m->is_object()) {
        if (auto* e = m->as_object().if_contains("events"); e && e->is_int64())
          *events = static_cast<long>(e->as_int64());
      }
    }
    if (st == "completed" || st == "cancelled" || st == "error") co_return st;
    if (now_ns() > until) co_return std::string("timeout");
    co_await sleep_ms(c, pause);
    pause = std::min(pause * 1.5, 250.0);
  }
  co_return std::string("aborted");
}

awaitable<std::string> nchan_publish(Ctx& c, HttpClient& api, std::string channel, std::string type, std::string data) {
  std::string hdr = "X-EventSource-Event: " + type + "\r\n";
  HttpResponse r = co_await api.request("POST", c.nchan_pub + channel, std::move(data), std::move(hdr));
  if (!r.ok()) co_return r.error;
  if (r.status != 200 && r.status != 201 && r.status != 202)
    co_return "publish HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200);
  co_return std::string();
}

// Publishes a whole mock-like log to an nchan channel: head events, `words` deltas paced
// `delay_ms` apart on an absolute schedule (0 = as fast as one connection goes), then the
// terminal events. *pub_times gets, per delta, the instant just before its POST was written.
awaitable<std::string> nchan_publish_log(Ctx& c, HttpClient& api, std::string channel, long words, double delay_ms,
                                         std::vector<std::int64_t>* pub_times) {
  EventLog log = make_log(words);
  for (auto& [type, data] : log.head) {
    std::string err = co_await nchan_publish(c, api, channel, type, data);
    if (!err.empty()) co_return err;
  }
  if (pub_times) pub_times->reserve(static_cast<std::size_t>(words));
  const std::int64_t t0 = now_ns();
  const std::int64_t step = static_cast<std::int64_t>(delay_ms * 1e6);
  for (long k = 1; k <= words && !c.aborting; ++k) {
    if (step > 0) co_await sleep_until_ns(c, t0 + (k - 1) * step);
    if (pub_times) pub_times->push_back(now_ns());
    std::string err = co_await nchan_publish(c, api, channel, "content_block_delta", log.delta(k));
    if (!err.empty()) co_return err;
  }
  if (step > 0) co_await sleep_until_ns(c, t0 + words * step);
  for (auto& [type, data] : log.tail) {
    std::string err = co_await nchan_publish(c, api, channel, type, data);
    if (!err.empty()) co_return err;
  }
  co_return std::string();
}

// Creates a finished log of `words` deltas (+5 framing events): a spool job on a fast model,
// waited for until completed, or an nchan channel published at full speed.
awaitable<std::string> prepare_finished_log(Run& R, HttpClient& api, const std::string& id, long words) {
  Ctx& c = R.c;
  if (c.nchan) co_return co_await nchan_publish_log(c, api, id, words, 0, nullptr);
  HttpResponse r = co_await create_job(c, api, id, chat_body(c, words, words));
  if (!r.ok()) co_return "create: " + r.error;
  if (r.status != 200) co_return "create HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300);
  long events = -1;
  std::string st = co_await wait_terminal(c, api, id, R.o.real("prepare-timeout-s", 120), &events);
  if (st != "completed") co_return "job did not complete: " + st;
  if (events >= 0 && events != words + 5)
    co_return "log has " + std::to_string(events) + " events, expected " + std::to_string(words + 5);
  co_return std::string();
}

void add_params(JsonLine& j, const std::vector<std::pair<std::string, long long>>& params) {
  JsonLine p;
  for (auto& [k, v] : params) p.num(k, v);
  j.raw("params", p.done());
}

// ---------------------------------------------------------------------------------------------
// fanout: 1 job, M observers attached before (spool: as soon as possible after) it produces,
// W tokens paced by the engine (spool) or by the client's publisher (nchan).

awaitable<int> sc_fanout(Run& R) {
  Ctx& c = R.c;
  const long M = static_cast<long>(R.o.num("observers", 100));
  const long W = static_cast<long>(R.o.num("tokens", 100));
  const double delay = R.o.real("token-delay-ms", 20);
  const long conc = static_cast<long>(R.o.num("connect-concurrency", 256));
  JsonLine j = R.line("fanout");
  add_params(j, {{"observers", M},
                 {"tokens", W},
                 {"token_delay_ms", static_cast<long long>(delay)},
                 {"connect_concurrency", conc}});

  const std::string id = "bench-fanout-" + hex_tag(12);
  HttpClient api(c);
  std::vector<ObsResult> res(static_cast<std::size_t>(M));
  ObsSpec spec = observe_spec(c, id);
  spec.record = true;
  spec.reserve = static_cast<std::size_t>(W) + 4;
  // --port2: every second observer watches through another instance (Redis broker).
  const long port2 = static_cast<long>(R.o.num("port2", 0));
  ObsSpec spec2 = spec;
  if (port2 > 0) spec2.endpoint = tcp::endpoint(c.ep.address(), static_cast<unsigned short>(port2));
  const auto on_second = [&](std::size_t i) { return port2 > 0 && i % 2 == 1; };
  WaitGroup attached(c, M), done(c, M);
  Semaphore gate(c, conc);

  R.cpu_start();
  const std::int64_t t_start = now_ns();
  if (!c.nchan) {
    HttpResponse r = co_await create_job(c, api, id, chat_body(c, W, W));
    if (!r.ok() || r.status != 200) {
      std::string msg = r.ok() ? "create HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300) : r.error;
      co_return finish(R, j, false, msg);
    }
  }
  for (std::size_t i = 0; i < res.size(); ++i)
    spawn(c, observe(c, on_second(i) ? spec2 : spec, res[i], &gate, &attached, &done));
  WaitGroup swept(c, 1);
  spawn(c, sweep_late_closers(c, res, done, R.o.real("close-grace-ms", 5000), swept));
  co_await attached.wait();
  const std::int64_t t_attached = now_ns();
  std::vector<std::int64_t> pub_times;
  std::string perr;
  if (c.nchan && !c.aborting) {
    co_await sleep_ms(c, 100);
    perr = co_await nchan_publish_log(c, api, id, W, delay, &pub_times);
  }
  co_await done.wait();
  const std::int64_t t_end = now_ns();
  const double cpu = R.cpu_used();
  co_await swept.wait();

  ObsSummary s = summarize(res, W);
  add_throughput(R, j, s.events, t_end - t_start, cpu);
  add_summary(j, s);
  j.num("attach_seconds", static_cast<double>(t_attached - t_start) / 1e9, 4);

  // Spread latency (see the comment at the top of this file).
  std::vector<std::int64_t> first(static_cast<std::size_t>(W), LLONG_MAX);
  for (auto& r : res)
    for (std::size_t k = 0; k < r.arrivals.size() && k < first.size(); ++k)
      first[k] = std::min(first[k], r.arrivals[k]);
  const std::int64_t margin = std::max<std::int64_t>(50'000'000, static_cast<std::int64_t>(2 * delay * 1e6));
  const std::int64_t live_from = t_attached + margin;
  std::vector<std::int64_t> spread, interval;
  long live_events = 0;
  for (std::size_t k = 0; k < first.size(); ++k) {
    if (first[k] == LLONG_MAX || first[k] < live_from) continue;
    ++live_events;
    if (k > 0 && first[k - 1] != LLONG_MAX && first[k - 1] >= live_from) interval.push_back(first[k] - first[k - 1]);
  }
  spread.reserve(static_cast<std::size_t>(live_events) * res.size());
  for (auto& r : res)
    for (std::size_t k = 0; k < r.arrivals.size() && k < first.size(); ++k)
      if (first[k] != LLONG_MAX && first[k] >= live_from) spread.push_back(r.arrivals[k] - first[k]);
  j.str("latency_method", "spread_from_first_observer");
  j.num("latency_live_events", static_cast<long long>(live_events));
  j.num("latency_samples", static_cast<long long>(spread.size()));
  Percentiles sp = percentiles(spread, 1e6);
  j.num("latency_p50_ms", sp.p50).num("latency_p99_ms", sp.p99).num("latency_max_ms", sp.max);
  Percentiles iv = percentiles(interval, 1e6);
  j.pct("token_interval", iv, "ms");
  if (port2 > 0) {
    // Through the second instance: each live event's arrival there minus its first arrival at
    // an observer of the instance running the job (which delivers from memory at once).
    std::vector<std::int64_t> first_local(first.size(), LLONG_MAX);
    for (std::size_t i = 0; i < res.size(); ++i) {
      if (on_second(i)) continue;
      for (std::size_t k = 0; k < res[i].arrivals.size() && k < first.size(); ++k)
        first_local[k] = std::min(first_local[k], res[i].arrivals[k]);
    }
    std::vector<std::int64_t> remote;
    for (std::size_t i = 0; i < res.size(); ++i) {
      if (!on_second(i)) continue;
      for (std::size_t k = 0; k < res[i].arrivals.size() && k < first.size(); ++k)
        if (first_local[k] != LLONG_MAX && first_local[k] >= live_from)
          remote.push_back(res[i].arrivals[k] - first_local[k]);
    }
    // The hop alone: an event's first arrival through the second instance minus its first
    // arrival at the first (the rest of `remote` is the second instance's own fan-out spread).
    std::vector<std::int64_t> first_remote(first.size(), LLONG_MAX);
    for (std::size_t i = 0; i < res.size(); ++i) {
      if (!on_second(i)) continue;
      for (std::size_t k = 0; k < res[i].arrivals.size() && k < first.size(); ++k)
        first_remote[k] = std::min(first_remote[k], res[i].arrivals[k]);
    }
    std::vector<std::int64_t> hop;
    for (std::size_t k = 0; k < first.size(); ++k)
      if (first_local[k] != LLONG_MAX && first_local[k] >= live_from && first_remote[k] != LLONG_MAX)
        hop.push_back(first_remote[k] - first_local[k]);
    Percentiles hp = percentiles(hop, 1e6);
    j.num("cross_instance_hop_p50_ms", hp.p50).num("cross_instance_hop_p99_ms", hp.p99);
    Percentiles rp = percentiles(remote, 1e6);
    j.num("port2_observers", static_cast<long long>(M / 2));
    j.num("cross_instance_latency_p50_ms", rp.p50).num("cross_instance_latency_p99_ms", rp.p99);
    j.num("cross_instance_latency_max_ms", rp.max);
  }
  if (c.nchan) {
    std::vector<std::int64_t> pl;
    pl.reserve(pub_times.size() * res.size());
    for (auto& r : res)
      for (std::size_t k = 0; k < r.arrivals.size() && k < pub_times.size(); ++k)
        pl.push_back(r.arrivals[k] - pub_times[k]);
    Percentiles pp = percentiles(pl, 1e6);
    j.num("publish_latency_p50_ms", pp.p50).num("publish_latency_p99_ms", pp.p99).num("publish_latency_max_ms", pp.max);
  }
  bool ok = perr.empty() && s.complete == M && live_events > 0;
  std::string err = perr;
  if (err.empty() && s.complete != M) err = std::to_string(M - s.complete) + " observers incomplete";
  co_return finish(R, j, ok, err);
}

// ---------------------------------------------------------------------------------------------
// catchup / replay: a finished log of W deltas, then M observers attach at once and read all.

awaitable<int> sc_catchup(Run& R, std::string name) {
  Ctx& c = R.c;
  const bool replay = name == "replay";
  const long M = static_cast<long>(R.o.num("observers", replay ? 1 : 100));
  const long W = static_cast<long>(R.o.num("tokens", replay ? 99995 : 1000));
  const long conc = static_cast<long>(R.o.num("connect-concurrency", 256));
  const double min_seconds = R.o.real("min-seconds", 0);
  const long max_rounds = std::max(1L, static_cast<long>(R.o.num("max-rounds", 1)));
  JsonLine j = R.line(name);
  add_params(j, {{"observers", M},
                 {"tokens", W},
                 {"log_events", W + 5},
                 {"connect_concurrency", conc},
                 {"min_ms", static_cast<long long>(min_seconds * 1000)},
                 {"max_rounds", max_rounds}});

  // --id ID: read that finished stream (e.g. one a restarted server has only on disk) instead
  // of creating one; --tokens must be its length. The line names the id either way.
  const std::string given = R.o.str("id", "");
  const std::string id = given.empty() ? "bench-" + name + "-" + hex_tag(12) : given;
  j.str("id", id);
  if (given.empty()) {
    HttpClient api(c);
    const std::int64_t t_prep = now_ns();
    std::string err = co_await prepare_finished_log(R, api, id, W);
    if (!err.empty()) co_return finish(R, j, false, err);
    j.num("prepare_seconds", static_cast<double>(now_ns() - t_prep) / 1e9, 3);
    api.close();
    co_await sleep_ms(c, R.o.real("settle-ms", 300));
  }

  // Rounds: the wave of M observers is repeated (each wave waits for the previous one) until
  // the measured time reaches --min-seconds or --max-rounds waves ran, so a log that a fast
  // server sends in a few milliseconds is still timed and CPU-sampled over a useful interval.
  ObsSpec spec = observe_spec(c, id);
  ObsSummary s;
  std::vector<std::int64_t> ttc, close_after;
  std::int64_t measured = 0;
  long rounds = 0;
  bool all_complete = true;
  R.cpu_start();
  while (!c.aborting) {
    std::vector<ObsResult> res(static_cast<std::size_t>(M));
    WaitGroup done(c, M), swept(c, 1);
    Semaphore gate(c, conc);
    const std::int64_t t_start = now_ns();
    for (auto& r : res) spawn(c, observe(c, spec, r, &gate, nullptr, &done));
    spawn(c, sweep_late_closers(c, res, done, R.o.real("close-grace-ms", 5000), swept));
    co_await done.wait();
    measured += now_ns() - t_start;
    ++rounds;
    co_await swept.wait();
    ObsSummary rs = summarize(res, W);
    s.events += rs.events;
    s.deltas += rs.deltas;
    s.bytes += rs.bytes;
    s.attached += rs.attached;
    s.complete += rs.complete;
    s.failed += rs.failed;
    s.late_close += rs.late_close;
    s.error_events += rs.error_events;
    if (s.first_error.empty()) s.first_error = rs.first_error;
    for (auto& r : res) {
      if (r.got_stop) ttc.push_back(r.t_stop - r.t_begin);
      if (r.got_stop && r.closed && !r.late_close) close_after.push_back(r.t_closed - r.t_stop);
    }
    if (rs.complete != M) {
      all_complete = false;
      break;
    }
    if (static_cast<double>(measured) / 1e9 >= min_seconds || rounds >= max_rounds) break;
  }
  const double cpu = R.cpu_used();

  j.num("rounds", static_cast<long long>(rounds));
  add_throughput(R, j, s.events, measured, cpu);
  add_summary(j, s);
  double secs = static_cast<double>(measured) / 1e9;
  j.num("mib_per_s", secs > 0 ? static_cast<double>(s.bytes) / 1048576.0 / secs : 0.0, 2);
  // Time for one observer to read the whole log: connect to message_stop.
  Percentiles p = percentiles(ttc, 1e6);
  j.pct("read_all", p, "ms");
  Percentiles cp = percentiles(close_after, 1e6);
  if (!c.nchan) j.num("close_after_stop_p50_ms", cp.p50).num("close_after_stop_p99_ms", cp.p99);
  bool ok = all_complete && rounds > 0;
  co_return finish(
      R, j, ok,
      ok ? "" : "observers incomplete (" + std::to_string(s.complete) + " of " + std::to_string(M * rounds) + ")");
}

// ---------------------------------------------------------------------------------------------
// jobs: J concurrent jobs (spool), each created then watched by one observer.

awaitable<void> one_job(Ctx& c, std::string id, std::string body, ObsResult& r, Semaphore& gate, WaitGroup& done) {
  Once once(&done);
  if (!co_await gate.acquire()) {
    r.failed = r.aborted = true;
    co_return;
  }
  HttpResponse resp;
  {
    HttpClient api(c);
    resp = co_await create_job(c, api, id, std::move(body));
    api.close();
  }
  gate.release();
  if (!resp.ok() || resp.status != 200) {
    r.failed = true;
    r.t_begin = now_ns();
    r.error = resp.ok() ? "create HTTP " + std::to_string(resp.status) : resp.error;
    co_return;
  }
  ObsSpec spec = observe_spec(c, id);
  co_await observe(c, spec, r, &gate, nullptr, nullptr);
}

awaitable<int> sc_jobs(Run& R) {
  Ctx& c = R.c;
  const long J = static_cast<long>(R.o.num("jobs", 100));
  const long W = static_cast<long>(R.o.num("tokens", 100));
  const double delay = R.o.real("token-delay-ms", 20);
  const long conc = static_cast<long>(R.o.num("connect-concurrency", 256));
  JsonLine j = R.line("jobs");
  add_params(
      j,
      {{"jobs", J}, {"tokens", W}, {"token_delay_ms", static_cast<long long>(delay)}, {"connect_concurrency", conc}});
  const std::string tag = hex_tag(8);
  const std::string body = chat_body(c, W, W);
  std::vector<ObsResult> res(static_cast<std::size_t>(J));
  WaitGroup done(c, J);
  Semaphore gate(c, conc);
  R.cpu_start();
  const std::int64_t t_start = now_ns();
  for (long i = 0; i < J; ++i)
    spawn(c, one_job(c, "bench-jobs-" + tag + "-" + std::to_string(i), body, res[static_cast<std::size_t>(i)], gate,
                     done));
  WaitGroup swept(c, 1);
  spawn(c, sweep_late_closers(c, res, done, R.o.real("close-grace-ms", 5000), swept));
  co_await done.wait();
  const std::int64_t t_end = now_ns();
  const double cpu = R.cpu_used();
  co_await swept.wait();
  ObsSummary s = summarize(res, W);
  add_throughput(R, j, s.events, t_end - t_start, cpu);
  add_summary(j, s);
  if (delay > 0) j.num("paced_events_per_s", static_cast<double>(J) * 1000.0 / delay, 1);
  std::vector<std::int64_t> dur;
  for (auto& r : res)
    if (r.got_stop) dur.push_back(r.t_stop - r.t_begin);
  Percentiles p = percentiles(dur, 1e6);
  j.pct("job", p, "ms");
  bool ok = s.complete == J;
  co_return finish(R, j, ok, ok ? "" : std::to_string(J - s.complete) + " jobs incomplete");
}

// ---------------------------------------------------------------------------------------------
// initiate: N job-creating POSTs over C keep-alive connections.

struct InitState {
  long next = 0, n = 0;
  std::int64_t deadline_ns = 0;  // with --duration-s: no request is sent after it
  std::vector<std::int64_t> lat;
  std::map<int, long> statuses;
  long transport_errors = 0;
  std::string first_error;
};

awaitable<void> initiate_conn(Ctx& c, InitState& st, std::string tag, std::string body, WaitGroup& ready,
                              WaitGroup& done) {
  Once once(&done);
  HttpClient api(c);
  std::string err = co_await api.connect();
  ready.done();
  co_await ready.wait();
  if (!err.empty()) {
    ++st.transport_errors;
    if (st.first_error.empty()) st.first_error = err;
    co_return;
  }
  while (st.next < st.n && !c.aborting && (st.deadline_ns == 0 || now_ns() < st.deadline_ns)) {
    long i = st.next++;
    std::int64_t t = now_ns();
    HttpResponse r = co_await create_job(c, api, "bench-init-" + tag + "-" + std::to_string(i), body);
    st.lat.push_back(now_ns() - t);
    if (!r.ok()) {
      ++st.transport_errors;
      if (st.first_error.empty()) st.first_error = r.error;
    } else {
      ++st.statuses[r.status];
      if (r.status != 200 && st.first_error.empty())
        st.first_error = "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200);
    }
  }
}

awaitable<int> sc_initiate(Run& R) {
  Ctx& c = R.c;
  InitState st;
  // --duration-s: as many requests as fit in that time (starts while earlier jobs still stream).
  const double duration_s = R.o.real("duration-s", 0);
  st.n = duration_s > 0 ? std::numeric_limits<long>::max() : static_cast<long>(R.o.num("requests", 10000));
  const long C = static_cast<long>(R.o.num("connections", 64));
  const long words = static_cast<long>(R.o.num("tokens", 1));
  JsonLine j = R.line("initiate");
  add_params(j, {{"requests", duration_s > 0 ? 0 : st.n},
                 {"duration_ms", static_cast<long long>(duration_s * 1000)},
                 {"connections", C},
                 {"tokens", words}});
  if (duration_s <= 0) st.lat.reserve(static_cast<std::size_t>(st.n));
  WaitGroup ready(c, C), done(c, C);
  const std::string tag = hex_tag(8);
  const std::string body = chat_body(c, words, words);
  for (long i = 0; i < C; ++i) spawn(c, initiate_conn(c, st, tag, body, ready, done));
  co_await ready.wait();
  R.cpu_start();
  const std::int64_t t_start = now_ns();
  if (duration_s > 0) st.deadline_ns = t_start + static_cast<std::int64_t>(duration_s * 1e9);
  co_await done.wait();
  const std::int64_t t_end = now_ns();
  const double cpu = R.cpu_used();
  if (duration_s > 0) st.n = static_cast<long>(st.lat.size());
  long ok200 = st.statuses.count(200) ? st.statuses[200] : 0;
  double secs = static_cast<double>(t_end - t_start) / 1e9;
  j.num("requests_done", static_cast<long long>(st.lat.size()));
  j.num("requests_ok", static_cast<long long>(ok200));
  j.num("seconds", secs, 4);
  j.num("requests_per_s", secs > 0 ? static_cast<double>(ok200) / secs : 0.0, 1);
  Percentiles p = percentiles(st.lat, 1e6);
  j.num("latency_p50_ms", p.p50).num("latency_p99_ms", p.p99).num("latency_max_ms", p.max);
  if (cpu >= 0) {
    j.num("server_cpu_s", cpu, 3);
    j.num("server_cpu_us_per_request", ok200 ? cpu * 1e6 / static_cast<double>(ok200) : 0.0, 3);
  } else {
    j.null("server_cpu_s").null("server_cpu_us_per_request");
  }
  j.num("client_cpu_s", self_cpu_seconds() - R.self0, 3);
  JsonLine sj;
  for (auto& [code, n] : st.statuses) sj.num(std::to_string(code), static_cast<long long>(n));
  j.raw("statuses", sj.done());
  j.num("transport_errors", static_cast<long long>(st.transport_errors));
  if (!st.first_error.empty()) j.str("first_error", st.first_error);
  bool ok = ok200 == st.n;
  co_return finish(R, j, ok, ok ? "" : std::to_string(st.n - ok200) + " requests failed");
}

// ---------------------------------------------------------------------------------------------
// idle: K observers held open on J jobs that produce (almost) nothing; server RSS per observer.

awaitable<int> sc_idle(Run& R) {
  Ctx& c = R.c;
  const long K = static_cast<long>(R.o.num("observers", 1000));
  const long J = static_cast<long>(R.o.num("jobs", std::max(1L, K / 1000)));
  const long W = static_cast<long>(R.o.num("tokens", 3));
  const double settle_ms = R.o.real("settle-ms", 1000);
  const double hold_s = R.o.real("hold-s", 2);
  const long conc = static_cast<long>(R.o.num("connect-concurrency", 256));
  JsonLine j = R.line("idle");
  add_params(j, {{"observers", K},
                 {"jobs", J},
                 {"tokens", W},
                 {"hold_ms", static_cast<long long>(hold_s * 1000)},
                 {"connect_concurrency", conc}});
  if (!R.srv.enabled()) co_return finish(R, j, false, "idle needs --server-pid");

  const std::string tag = hex_tag(8);
  std::vector<std::string> ids;
  const long rss_start = R.srv.rss_kib();  // before the jobs: their cost is rss0 - rss_start
  HttpClient api(c);
  for (long i = 0; i < J; ++i) {
    std::string id = "bench-idle-" + tag + "-" + std::to_string(i);
    if (c.nchan) {
      EventLog log = make_log(W);
      for (auto& [type, data] : log.head) {
        std::string err = co_await nchan_publish(c, api, id, type, data);
        if (!err.empty()) co_return finish(R, j, false, err);
      }
    } else {
      HttpResponse r = co_await create_job(c, api, id, chat_body(c, W, W));
      if (!r.ok() || r.status != 200) {
        std::string msg = r.ok() ? "create HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300) : r.error;
        co_return finish(R, j, false, msg);
      }
    }
    ids.push_back(id);
  }
  api.close();
  co_await sleep_ms(c, 300);
  const long rss0 = R.srv.rss_kib();

  std::vector<ObsResult> res(static_cast<std::size_t>(K));
  std::vector<ObsSpec> specs;
  specs.reserve(ids.size());
  for (auto& id : ids) specs.push_back(observe_spec(c, id));
  WaitGroup attached(c, K), done(c, K);
  Semaphore gate(c, conc);
  const std::int64_t t_start = now_ns();
  for (long i = 0; i < K; ++i)
    spawn(c, observe(c, specs[static_cast<std::size_t>(i % J)], res[static_cast<std::size_t>(i)], &gate, &attached,
                     &done));
  co_await attached.wait();
  const std::int64_t t_attached = now_ns();
  co_await sleep_ms(c, settle_ms);
  const long rss1 = R.srv.rss_kib();
  R.cpu_start();
  co_await sleep_ms(c, hold_s * 1000);
  const double hold_cpu = R.cpu_used();
  long still_open = 0;
  for (auto& r : res) still_open += r.sock != nullptr && r.attached && r.status == 200;
  const std::uint64_t events_before_close = summarize(res, -1).events;

  c.close_sockets();  // end the observers on purpose
  co_await done.wait();
  ObsSummary s = summarize(res, -1);
  if (!c.nchan) {  // leave nothing running in the server
    for (auto& id : ids) (void)co_await api.request("POST", spool_path(c, id, "/cancel"), "");
    api.close();
  }
  j.num("observers_attached", static_cast<long long>(s.attached));
  j.num("observers_open_at_end", static_cast<long long>(still_open));
  j.num("attach_seconds", static_cast<double>(t_attached - t_start) / 1e9, 4);
  j.num("events", static_cast<long long>(events_before_close));
  j.num("rss_start_kib", static_cast<long long>(rss_start));
  j.num("rss_per_job_kib", static_cast<double>(rss0 - rss_start) / static_cast<double>(J), 3);
  j.num("rss_before_kib", static_cast<long long>(rss0));
  j.num("rss_after_kib", static_cast<long long>(rss1));
  j.num("rss_delta_kib", static_cast<long long>(rss1 - rss0));
  j.num("rss_per_observer_kib", s.attached ? static_cast<double>(rss1 - rss0) / static_cast<double>(s.attached) : 0.0,
        3);
  if (hold_cpu >= 0) j.num("server_cpu_ms_per_s_while_idle", hold_cpu * 1000.0 / hold_s, 3);
  j.num("client_cpu_s", self_cpu_seconds() - R.self0, 3);
  if (!s.first_error.empty()) j.str("first_error", s.first_error);
  bool ok = s.attached == K && still_open == K;
  co_return finish(R, j, ok, ok ? "" : std::to_string(K - still_open) + " observers not held open");
}

// ---------------------------------------------------------------------------------------------
// cancel: a job with M observers streaming; time from sending cancel to each observer's
// connection closing (and to its message_stop).

awaitable<int> sc_cancel(Run& R) {
  Ctx& c = R.c;
  const long M = static_cast<long>(R.o.num("observers", 100));
  const long W = static_cast<long>(R.o.num("tokens", 3000));
  const double pre_ms = R.o.real("pre-cancel-ms", 1000);
  const double cancel_timeout = R.o.real("cancel-timeout-s", 10);
  const long conc = static_cast<long>(R.o.num("connect-concurrency", 256));
  JsonLine j = R.line("cancel");
  add_params(j, {{"observers", M},
                 {"tokens", W},
                 {"pre_cancel_ms", static_cast<long long>(pre_ms)},
                 {"connect_concurrency", conc}});

  const std::string id = "bench-cancel-" + hex_tag(12);
  HttpClient api(c), canceller(c);
  HttpResponse r = co_await create_job(c, api, id, chat_body(c, W, W));
  if (!r.ok() || r.status != 200) {
    std::string msg = r.ok() ? "create HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300) : r.error;
    co_return finish(R, j, false, msg);
  }
  std::vector<ObsResult> res(static_cast<std::size_t>(M));
  ObsSpec spec = observe_spec(c, id);
  WaitGroup attached(c, M), done(c, M);
  Semaphore gate(c, conc);
  for (auto& o : res) spawn(c, observe(c, spec, o, &gate, &attached, &done));
  co_await attached.wait();
  co_await sleep_ms(c, pre_ms);
  std::string cerr = co_await canceller.connect();
  if (!cerr.empty()) {
    c.abort_all();
    co_await done.wait();
    co_return finish(R, j, false, cerr);
  }
  long streaming = 0;
  std::uint64_t deltas_before = 0;
  for (auto& o : res) {
    streaming += o.sock != nullptr && o.deltas > 0 && !o.got_stop;
    deltas_before += o.deltas;
  }
  R.cpu_start();
  const std::int64_t t_cancel = now_ns();
  HttpResponse cr = co_await canceller.request("POST", spool_path(c, id, "/cancel"), "");
  const std::int64_t t_resp = now_ns();
  c.arm(cancel_timeout);  // observers still open then are cut and counted as not closed
  co_await done.wait();
  c.disarm();
  const bool cut = c.timed_out;
  c.timed_out = false;

  std::vector<std::int64_t> close_lat, stop_lat;
  long closed = 0, stopped_cancelled = 0;
  for (auto& o : res) {
    if (o.closed && !o.late_close && o.t_closed >= t_cancel) {
      ++closed;
      close_lat.push_back(o.t_closed - t_cancel);
    }
    if (o.got_stop && o.t_stop >= t_cancel) {
      ++stopped_cancelled;
      stop_lat.push_back(o.t_stop - t_cancel);
    }
  }
  ObsSummary s = summarize(res, -1);
  j.num("observers_attached", static_cast<long long>(s.attached));
  j.num("observers_streaming_at_cancel", static_cast<long long>(streaming));
  j.num("deltas_before_cancel", static_cast<long long>(deltas_before));
  j.num("cancel_http_status", static_cast<long long>(cr.status));
  j.num("cancel_response_ms", static_cast<double>(t_resp - t_cancel) / 1e6);
  j.num("observers_closed", static_cast<long long>(closed));
  j.num("observers_got_stop", static_cast<long long>(stopped_cancelled));
  j.num("observers_not_closed", static_cast<long long>(M - closed));
  Percentiles cp = percentiles(close_lat, 1e6);
  j.num("close_latency_p50_ms", cp.p50).num("close_latency_p99_ms", cp.p99).num("close_latency_max_ms", cp.max);
  Percentiles sp = percentiles(stop_lat, 1e6);
  j.num("stop_latency_p50_ms", sp.p50).num("stop_latency_p99_ms", sp.p99);
  double cpu = R.cpu_used();
  if (cpu >= 0) j.num("server_cpu_s", cpu, 3);
  j.num("client_cpu_s", self_cpu_seconds() - R.self0, 3);
  if (!s.first_error.empty()) j.str("first_error", s.first_error);
  std::string err;
  if (!cr.ok())
    err = "cancel: " + cr.error;
  else if (cr.status != 200)
    err = "cancel HTTP " + std::to_string(cr.status) + ": " + cr.body.substr(0, 200);
  else if (cut || closed != M)
    err = std::to_string(M - closed) + " observers not closed within " + std::to_string(cancel_timeout) + " s";
  co_return finish(R, j, err.empty(), err);
}

// ---------------------------------------------------------------------------------------------
// generate: a real model's throughput. Rounds of J concurrent streamed replies, each a POST that
// streams its own reply: Spool's or llama-server's /v1/messages (Anthropic events), or
// llama-server's /v1/chat/completions (--api openai). Greedy decoding; every prompt is distinct
// so no server reuses a cached prompt. Reports output tokens/s over the whole run and the time
// to first token.

std::string generate_body(Ctx& c, bool openai, long words, long max_tokens, const std::string& tag) {
  std::string prompt = tag;
  for (long i = 1; i < words; ++i) prompt += " word";  // one token each in common vocabularies
  std::string s = R"({"model":")" + json_escape(c.model) + R"(","max_tokens":)" + std::to_string(max_tokens) +
                  R"(,"temperature":0,"stream":true,"messages":[{"role":"user","content":")" + json_escape(prompt) +
                  R"("}])";
  if (openai) s += R"(,"stream_options":{"include_usage":true})";
  return s + "}";
}

awaitable<int> sc_generate(Run& R) {
  Ctx& c = R.c;
  const long J = static_cast<long>(R.o.num("jobs", 4));
  const long rounds = static_cast<long>(R.o.num("rounds", 3));
  const long words = static_cast<long>(R.o.num("prompt-words", 100));
  const long G = static_cast<long>(R.o.num("tokens", 128));
  const std::string api = R.o.str("api", "anthropic");
  const bool openai = api == "openai";
  JsonLine j;
  j.str("scenario", "generate").str("target", R.o.str("label", "spool")).str("api", api);
  add_params(j, {{"jobs", J}, {"rounds", rounds}, {"prompt_words", words}, {"tokens", G}});
  const std::string path = R.o.str("path", openai ? "/v1/chat/completions" : "/v1/messages");
  const std::string tag = hex_tag(8);
  std::vector<ObsResult> res(static_cast<std::size_t>(J * rounds));
  std::vector<ObsSpec> specs(res.size());  // observe() keeps a reference to its spec
  Semaphore gate(c, J);
  R.cpu_start();
  const std::int64_t t_start = now_ns();
  for (long round = 0; round < rounds && !c.aborting; ++round) {
    WaitGroup done(c, J);
    for (long i = 0; i < J; ++i) {
      ObsSpec& spec = specs[static_cast<std::size_t>(round * J + i)];
      spec.method = "POST";
      spec.target = c.prefix + path;
      spec.openai = openai;
      spec.close_on_stop = true;
      spec.body = generate_body(c, openai, words, G, tag + "-" + std::to_string(round) + "-" + std::to_string(i));
      spawn(c, observe(c, spec, res[static_cast<std::size_t>(round * J + i)], &gate, nullptr, &done));
    }
    co_await done.wait();
  }
  const std::int64_t t_end = now_ns();
  const double cpu = R.cpu_used();
  long complete = 0;
  std::int64_t tokens = 0, deltas = 0;
  std::vector<std::int64_t> ttft;
  std::string err;
  for (auto& r : res) {
    if (r.got_stop && !r.got_error && !r.failed) ++complete;
    if (r.failed && err.empty()) err = r.error;
    tokens += r.output_tokens >= 0 ? r.output_tokens : static_cast<std::int64_t>(r.deltas);
    deltas += static_cast<std::int64_t>(r.deltas);
    if (r.t_first_delta >= 0) ttft.push_back(r.t_first_delta - r.t_begin);
  }
  const double secs = static_cast<double>(t_end - t_start) / 1e9;
  j.num("replies", static_cast<long long>(complete))
      .num("output_tokens", static_cast<long long>(tokens))
      .num("deltas", static_cast<long long>(deltas))
      .num("seconds", secs, 3)
      .num("tokens_per_s", secs > 0 ? static_cast<double>(tokens) / secs : 0, 1);
  if (cpu >= 0) j.num("server_cpu_s", cpu, 3);
  Percentiles p = percentiles(ttft, 1e6);
  j.pct("ttft", p, "ms");
  const long want = J * rounds;
  bool ok = complete == want;
  co_return finish(R, j, ok,
                   ok ? "" : std::to_string(want - complete) + " replies incomplete" + (err.empty() ? "" : ": " + err));
}

awaitable<int> dispatch(Run& R, std::string scenario) {
  if (scenario == "fanout") co_return co_await sc_fanout(R);
  if (scenario == "catchup" || scenario == "replay") co_return co_await sc_catchup(R, scenario);
  if (scenario == "idle") co_return co_await sc_idle(R);
  if (scenario == "generate") co_return co_await sc_generate(R);
  if (R.c.nchan && (scenario == "jobs" || scenario == "initiate" || scenario == "cancel")) {
    JsonLine j = R.line(scenario);
    j.str("skipped", "not applicable to nchan");
    std::printf("%s\n", j.done().c_str());
    co_return 0;
  }
  if (scenario == "jobs") co_return co_await sc_jobs(R);
  if (scenario == "initiate") co_return co_await sc_initiate(R);
  if (scenario == "cancel") co_return co_await sc_cancel(R);
  std::fprintf(stderr, "spool_bench: unknown scenario '%s'\n", scenario.c_str());
  co_return 2;
}

// A plain function, not a capturing lambda: a coroutine lambda's captures die with the
// temporary lambda object while the coroutine still runs.
awaitable<void> run_scenario(Run& R, int& rc, std::string scenario) {
  rc = co_await dispatch(R, scenario);
  R.c.disarm();
}

const char* kUsage = R"(usage: spool_bench --scenario NAME [options]

scenarios: fanout catchup replay jobs initiate idle cancel generate (one per run, one JSON line)
           machine (machine info)   selftest (SSE parser / HTTP framing checks)
common:    --target spool|nchan (spool)  --host 127.0.0.1  --port 8080
           --server-pid PID (for CPU and RSS; nginx: the master pid, workers are added)
           --timeout-s 300  --connect-concurrency 256  --model default  --prefix ""
           --nchan-pub /pub/  --nchan-sub /sub/  --close-grace-ms 5000
fanout:    --observers 100 --tokens 100 --token-delay-ms 20
           [--port2 P --server-pid2 PID: half the observers watch through a second instance]
catchup:   --observers 100 --tokens 1000 --min-seconds 0 --max-rounds 1
replay:    --observers 1 --tokens 99995 (a log of tokens + 5 events) --min-seconds 0 --max-rounds 1
           [--id ID: read that existing finished stream instead of creating one (catchup too)]
           (the wave of observers repeats until min-seconds of reading or max-rounds waves)
jobs:      --jobs 100 --tokens 100 --token-delay-ms 20
initiate:  --requests 10000 --connections 64 --tokens 1 [--duration-s S: send for S seconds instead]
idle:      --observers 1000 --jobs K/1000 --tokens 3 --settle-ms 1000 --hold-s 2
cancel:    --observers 100 --tokens 3000 --pre-cancel-ms 1000 --cancel-timeout-s 10
generate:  --jobs 4 --rounds 3 --prompt-words 100 --tokens 128 --api anthropic|openai --label NAME
           [--path /v1/messages | /v1/chat/completions]  (a real model; greedy; distinct prompts)
)";

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  using namespace bench;
  std::signal(SIGPIPE, SIG_IGN);
  Options o;
  std::string perr;
  if (!o.parse(argc, argv, perr)) {
    std::fprintf(stderr, "spool_bench: %s\n%s", perr.c_str(), kUsage);
    return 2;
  }
  if (o.flag("help") || !o.has("scenario")) {
    std::fprintf(stderr, "%s", kUsage);
    return o.flag("help") ? 0 : 2;
  }
  const std::string scenario = o.str("scenario", "");
  if (scenario == "machine") {
    std::string m = machine_json();
    if (o.has("mode")) m.insert(m.size() - 1, ",\"mode\":\"" + json_escape(o.str("mode", "")) + "\"");
    std::printf("%s\n", m.c_str());
    return 0;
  }
  if (scenario == "selftest") {
    int passed = 0;
    int failed = selftest(passed);
    JsonLine j;
    j.str("scenario", "selftest")
        .num("passed", static_cast<long long>(passed))
        .num("failed", static_cast<long long>(failed));
    j.boolean("ok", failed == 0);
    std::printf("%s\n", j.done().c_str());
    return failed ? 1 : 0;
  }

  const long nofile = raise_nofile_limit();
  Ctx c;
  std::string host = o.str("host", "127.0.0.1");
  if (host == "localhost") host = "127.0.0.1";
  const long port = static_cast<long>(o.num("port", 8080));
  error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec || port <= 0 || port > 65535) {
    std::fprintf(stderr, "spool_bench: --host must be an IP address and --port 1..65535\n");
    return 2;
  }
  c.ep = tcp::endpoint(addr, static_cast<unsigned short>(port));
  c.host = host + ":" + std::to_string(port);
  const std::string target = o.str("target", "spool");
  if (target != "spool" && target != "nchan") {
    std::fprintf(stderr, "spool_bench: --target must be spool or nchan\n");
    return 2;
  }
  c.nchan = target == "nchan";
  c.prefix = o.str("prefix", "");
  c.model = o.str("model", "default");
  c.nchan_pub = o.str("nchan-pub", "/pub/");
  c.nchan_sub = o.str("nchan-sub", "/sub/");
  const double timeout = o.real("timeout-s", 300);
  (void)o.real("token-delay-ms", 0);  // run.sh passes it to every scenario; only some use it
  const long want = std::max({o.num("observers", 0), o.num("jobs", 0) * 2, o.num("connections", 0)});
  if (want + 64 > nofile)
    std::fprintf(stderr, "spool_bench: warning: %ld connections wanted but RLIMIT_NOFILE is %ld\n", want, nofile);

  Run R(c, o, static_cast<int>(o.num("server-pid", 0)), static_cast<int>(o.num("server-pid2", 0)));
  int rc = 1;
  spawn(c, run_scenario(R, rc, scenario));
  c.arm(timeout);
  try {
    c.io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spool_bench: %s\n", e.what());
    return 1;
  }
  for (auto& k : o.unused())
    std::fprintf(stderr, "spool_bench: warning: option --%s is not used by %s\n", k.c_str(), scenario.c_str());
  return rc;
}
