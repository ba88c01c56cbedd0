#include "cli/commands.hpp"

#include "cli/api_client.hpp"
#include "cli/render.hpp"
#include "cli/requests.hpp"
#include "cli/resume.hpp"
#include "cli/terminal.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <exception>
#include <iostream>
#include <iterator>

namespace spool::cli {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::array<std::string_view, 7> kClientCommands = {"chat", "start", "watch", "status", "cancel", "rm", "ls"};
constexpr auto kProgressEvery = 150ms;
}  // namespace

bool is_client_command(std::string_view name) {
  return std::find(kClientCommands.begin(), kClientCommands.end(), name) != kClientCommands.end();
}

struct Commands::Options {
  CLI::App* chat = nullptr;
  CLI::App* start = nullptr;
  CLI::App* watch = nullptr;
  CLI::App* status = nullptr;
  CLI::App* cancel = nullptr;
  CLI::App* rm = nullptr;
  CLI::App* ls = nullptr;

  // Each subcommand binds its own copy: CLI11 applies environment values to every subcommand's
  // options, parsed or not, so a shared variable would end up with the environment's value.
  struct Common {
    std::string url = "http://127.0.0.1:8080";
    std::string auth_secret;
    bool quiet = false;
  };
  std::array<Common, kClientCommands.size()> common;
  // The parsed subcommand's copy (set by Commands::run()).
  std::string url;
  std::string auth_secret;
  bool quiet = false;
  bool json = false;

  ChatParams chat_params;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<std::int64_t> thinking_budget;
  std::vector<std::string> prompt_words;
  std::string message_id;  // chat/start --id, or the ID argument of the others

  double retry_for = 60;
  std::string from;  // an SSE id, "N" or "N.I"

  std::string statuses;
  std::int64_t limit = 20;
  bool all = false;
};

namespace {

using Options = Commands::Options;

void add_common(CLI::App& cmd, Options::Common& o) {
  cmd.add_option("--url", o.url, "Spool server URL, optionally with a path prefix (http://host:port/prefix)")
      ->envname("SPOOL_URL")
      ->capture_default_str();
  cmd.add_option("--auth-secret", o.auth_secret, "Sent verbatim as the Authorization header (e.g. 'Bearer sk-...')")
      ->envname("SPOOL_AUTH_SECRET");
  cmd.add_flag("-q,--quiet", o.quiet, "No progress line");
  cmd.footer(exit_codes_help());
}

void add_chat_options(CLI::App& cmd, Options& o) {
  cmd.add_option("PROMPT", o.prompt_words, "The prompt (words joined with spaces); none: read all of standard input");
  cmd.add_option("-m,--model", o.chat_params.model, "Model name (default: the server's default model)");
  cmd.add_option("-s,--system", o.chat_params.system, "System prompt");
  cmd.add_option("--max-tokens", o.chat_params.max_tokens, "Most tokens to generate (<= 0: the engine's default)")
      ->capture_default_str();
  cmd.add_option("--temperature", o.temperature, "Sampling temperature, 0 to 1");
  cmd.add_option("--top-p", o.top_p, "Nucleus sampling, 0 to 1");
  cmd.add_option("--stop", o.chat_params.stop_sequences, "Stop sequence (repeatable)")->allow_extra_args(false);
  cmd.add_option("--thinking", o.thinking_budget, "Enable thinking with this many budget tokens");
  cmd.add_option("--id", o.message_id, "Use this message_id instead of a server-generated one");
}

// Everything one run of a client subcommand uses, on one single-threaded io_context.
class Session {
 public:
  Session(asio::io_context& io, const Options& o, Endpoint ep, std::string prompt)
      : prompt_(std::move(prompt)),
        o_(o),
        api_(std::move(ep)),
        term_(detect_terminal()),
        signals_(io, SIGINT),
        ticker_(io),
        backoff_(io),
        progress_(
            ProgressLine::choose(term_, o.quiet), [](std::string_view s) { write_fd(STDERR_FILENO, s); },
            [] { return terminal_rows(); }),
        started_(SteadyClock::now()) {}

  // Runs the command `which` (one of kClientCommands), returns its exit code.
  asio::awaitable<int> run(std::string which) {
    asio::co_spawn(signals_.get_executor(), watch_signals(), asio::detached);
    int rc = exit_code::ok;
    if (which == "chat" || which == "start") {
      rc = co_await start_job(which == "chat");
    } else if (which == "watch") {
      std::string id = o_.message_id;
      std::string from = o_.from;
      rc = co_await follow(std::move(id), std::move(from), false, false);
    } else if (which == "status") {
      rc = co_await status();
    } else if (which == "cancel" || which == "rm") {
      rc = co_await cancel_or_remove(which == "rm");
    } else if (which == "ls") {
      rc = co_await list();
    }
    stop_progress();
    done_ = true;
    signals_.cancel();
    co_return rc;
  }

 private:
  using CancelPtr = ApiClient::CancelPtr;

  asio::awaitable<void> watch_signals() {
    while (!done_) {
      auto [ec, sig] = co_await signals_.async_wait(use_tuple);
      if (ec) co_return;
      ++interrupts_;
      if (current_) current_->cancel();
      backoff_.cancel();
    }
  }

  // A fresh cancel handle for the next request, fired by Ctrl-C.
  CancelPtr arm() {
    current_ = std::make_shared<http::ClientCancel>();
    if (interrupts_ > handled_interrupts_) current_->cancel();
    return current_;
  }

  // Writes to standard output; false once the reader is gone (EPIPE: SIGPIPE is ignored).
  bool out(std::string_view s) {
    if (output_closed_) return false;
    output_closed_ = !write_fd(STDOUT_FILENO, s);
    return !output_closed_;
  }

  void fail(std::string_view msg) {
    stop_progress();
    std::string line = "spool: " + std::string(msg) + "\n";
    write_fd(STDERR_FILENO, line);
  }

  double elapsed() const { return std::chrono::duration<double>(SteadyClock::now() - started_).count(); }

  void start_progress(const EventFolder* folder) {
    if (progress_.mode() == ProgressLine::Mode::off || progress_on_) return;
    progress_on_ = true;
    folder_ = folder;
    asio::co_spawn(ticker_.get_executor(), tick(), asio::detached);
  }

  asio::awaitable<void> tick() {
    while (progress_on_) {
      progress_.show(format_progress(folder_->output_tokens(), elapsed()));
      ticker_.expires_after(kProgressEvery);
      co_await ticker_.async_wait(use_tuple);
    }
  }

  void stop_progress() {
    progress_on_ = false;
    ticker_.cancel();
    progress_.finish();
  }

  // A request that got no answer: prints why and returns the exit code.
  int transport_failure(const Error& e) {
    if (e.code == Errc::invalid_request) {
      fail(e.explanation);
      return exit_code::usage;
    }
    if (interrupts_ > 0) {
      fail("interrupted");
      return exit_code::interrupted;
    }
    fail("cannot reach " + api_.endpoint().base_url + ": " + transport_reason(e));
    return exit_code::unreachable;
  }

  // A refusal (any status the caller did not expect): prints why and returns the exit code.
  int refused(const Reply& r, std::string_view id) {
    if (r.status == 401) {
      fail(o_.auth_secret.empty()
               ? "not authenticated: set --auth-secret or SPOOL_AUTH_SECRET"
               : "not authenticated: the server refused the secret from --auth-secret or SPOOL_AUTH_SECRET");
    } else if (r.status == 404 && !id.empty() && !is_route_not_found(r.body)) {
      fail("stream " + std::string(id) + " not found");
    } else if (r.status == 404) {
      fail("not found: no Spool API at " + api_.endpoint().base_url + " (check --url)");
    } else {
      const std::string why = error_explanation(r.body);
      fail("the server refused the request (HTTP " + std::to_string(r.status) + ")" + (why.empty() ? "" : ": " + why));
    }
    return exit_code_for_http_status(r.status);
  }

  int unexpected(const Reply& r) {
    fail("unexpected answer from the server (HTTP " + std::to_string(r.status) + "): " + r.body.substr(0, 200));
    return exit_code::refused;
  }

  asio::awaitable<int> start_job(bool follow_it) {
    ChatParams p = o_.chat_params;
    p.temperature = o_.temperature;
    p.top_p = o_.top_p;
    p.thinking_budget = o_.thinking_budget;
    p.prompt = prompt_;
    std::string body = chat_body(p);
    std::string wanted = o_.message_id;
    CancelPtr c = arm();
    auto r = co_await api_.start(std::move(body), std::move(wanted), std::move(c));
    if (!r) co_return transport_failure(r.error());
    if (r->status != 200) co_return refused(*r, "");
    boost::system::error_code ec;
    const json::value v = json::parse(r->body, ec);
    const json::value* idv = !ec && v.is_object() ? v.get_object().if_contains("message_id") : nullptr;
    if (!idv || !idv->is_string()) co_return unexpected(*r);
    std::string id(idv->get_string());
    if (!follow_it) {
      if (interrupts_ > 0) {
        fail("interrupted (started " + id + ")");
        co_return exit_code::interrupted;
      }
      const std::string line = (o_.json ? r->body : id) + "\n";
      out(line);
      co_return exit_code::ok;
    }
    if (interrupts_ > 0) co_return co_await stop_following(std::move(id), true, nullptr, StopCause::interrupt);
    std::string from;  // from the start
    co_return co_await follow(std::move(id), std::move(from), true, true);
  }

  // Streams job `id` from after event `from` to its end, resuming after dropped connections.
  // `cancel_job`: Ctrl-C cancels the job (chat) rather than only stopping (watch). `reached`: the
  // server was already reached, so a first failure to connect is retried like a drop.
  asio::awaitable<int> follow(std::string id, std::string from, bool cancel_job, bool reached) {
    EventFolder folder;
    const auto retry_for = std::chrono::milliseconds(static_cast<std::int64_t>(o_.retry_for * 1000));
    ResumeTracker resume(from, retry_for, reached, SteadyClock::now());
    std::string last_reason;
    start_progress(&folder);
    for (;;) {
      bool answered = false;
      std::function<void(int)> on_status = [&](int) { answered = true; };
      std::function<bool(SseEvent &&)> on_event = [&](SseEvent&& ev) {
        if (ev.event == "ping") return true;
        resume.event(ev.id);
        Printed pr = folder.feed(ev.event, ev.data);
        bool written = true;
        if (o_.json) {
          ev.data += '\n';
          written = out(ev.data);
        } else {
          if (!pr.thinking.empty()) {
            progress_.write_err(term_.stderr_tty ? "\033[2m" + pr.thinking + "\033[0m" : pr.thinking);
          }
          if (!pr.out.empty()) written = out(pr.out);
        }
        return written && folder.end() == StreamEnd::open;
      };
      CancelPtr c = arm();
      std::string sid = id;
      std::string after = resume.last_event_id();
      auto r = co_await api_.stream(std::move(sid), std::move(after), std::move(on_status), std::move(on_event),
                                    std::move(c));
      if (folder.end() != StreamEnd::open) co_return finish(folder, id);
      if (output_closed_)
        co_return co_await stop_following(std::move(id), cancel_job, nullptr, StopCause::output_closed);
      if (interrupts_ > 0) co_return co_await stop_following(std::move(id), cancel_job, &folder, StopCause::interrupt);
      if (r) {
        if (r->status == 204) co_return co_await already_complete(std::move(id), folder);
        if (r->status != 200) co_return refused(*r, id);
        last_reason = "the connection closed";
      } else {
        if (r.error().code == Errc::invalid_request) co_return transport_failure(r.error());
        if (!answered && !resume.reached()) co_return transport_failure(r.error());
        last_reason = transport_reason(r.error());
      }
      resume.attempt_ended(answered, SteadyClock::now());
      const auto delay = resume.next_delay(SteadyClock::now());
      if (!delay) {
        fail(fmt::format("gave up on {} after {:g} s without reaching {}: {}", id, o_.retry_for,
                         api_.endpoint().base_url, last_reason));
        co_return exit_code::unreachable;
      }
      backoff_.expires_after(*delay);
      co_await backoff_.async_wait(use_tuple);
      if (interrupts_ > 0) co_return co_await stop_following(std::move(id), cancel_job, &folder, StopCause::interrupt);
    }
  }

  // The exit code for a stream that delivered its terminal events.
  int finish(const EventFolder& folder, const std::string& id) {
    if (!o_.json && term_.stdout_tty) out(folder.final_newline());
    stop_progress();
    switch (folder.end()) {
      case StreamEnd::completed:
      case StreamEnd::open:
        return exit_code::ok;
      case StreamEnd::cancelled:
        fail(id + " was cancelled");
        return exit_code::job_failed;
      case StreamEnd::error:
        fail(id + " failed: " + folder.error_message());
        return exit_code::job_failed;
    }
    return exit_code::ok;
  }

  // A resume answered 204: the stream had already ended; its status says how.
  asio::awaitable<int> already_complete(std::string id, const EventFolder& folder) {
    if (!o_.json && term_.stdout_tty) out(folder.final_newline());
    stop_progress();
    CancelPtr c = arm();
    std::string sid = id;
    auto r = co_await api_.status(std::move(sid), std::move(c));
    if (!r || r->status != 200) co_return exit_code::ok;
    boost::system::error_code ec;
    const json::value v = json::parse(r->body, ec);
    if (ec || !v.is_object()) co_return exit_code::ok;
    const auto* st = v.get_object().if_contains("status");
    if (st && st->is_string() && st->get_string() == "cancelled") {
      fail(id + " was cancelled");
      co_return exit_code::job_failed;
    }
    if (st && st->is_string() && st->get_string() == "error") {
      const auto* m = v.get_object().if_contains("error_message");
      fail(id + " failed: " + (m && m->is_string() ? std::string(m->get_string()) : std::string("unknown error")));
      co_return exit_code::job_failed;
    }
    co_return exit_code::ok;
  }

  enum class StopCause { interrupt, output_closed };

  // Ctrl-C, or standard output closed, while following `id`: cancels the job (chat: nobody will
  // read the rest) or only stops watching (watch). Returns the exit code of `cause`.
  asio::awaitable<int> stop_following(std::string id, bool cancel_job, const EventFolder* folder, StopCause cause) {
    if (folder && !o_.json && term_.stdout_tty) out(folder->final_newline());
    stop_progress();
    const int code = cause == StopCause::interrupt ? exit_code::interrupted : exit_code::output_closed;
    const std::string why = cause == StopCause::interrupt ? "" : "standard output closed; ";
    if (!cancel_job) {
      fail(why + "stopped watching " + id + " (the job goes on)");
      co_return code;
    }
    handled_interrupts_ = interrupts_;  // a second Ctrl-C gives up waiting for the cancel
    CancelPtr c = arm();
    std::string sid = id;
    auto r = co_await api_.cancel(std::move(sid), std::move(c));
    if (r && r->status == 200) {
      fail(why + "cancelled " + id);
    } else if (r) {
      const std::string why = error_explanation(r->body);
      fail("could not cancel " + id + " (HTTP " + std::to_string(r->status) + ")" + (why.empty() ? "" : ": " + why));
    } else if (interrupts_ > handled_interrupts_) {
      fail("interrupted again; " + id + " may still be running");
    } else {
      fail("could not cancel " + id + ": " + transport_reason(r.error()));
    }
    co_return code;
  }

  asio::awaitable<int> status() {
    CancelPtr c = arm();
    std::string id = o_.message_id;
    auto r = co_await api_.status(std::move(id), std::move(c));
    if (!r) co_return transport_failure(r.error());
    if (r->status != 200) co_return refused(*r, o_.message_id);
    if (o_.json) {
      std::string line = r->body + "\n";
      out(line);
      co_return exit_code::ok;
    }
    boost::system::error_code ec;
    const json::value v = json::parse(r->body, ec);
    if (ec) co_return unexpected(*r);
    out(format_status(v));
    co_return exit_code::ok;
  }

  asio::awaitable<int> cancel_or_remove(bool remove) {
    CancelPtr c = arm();
    std::string id = o_.message_id;
    Result<Reply> r;
    if (remove) {
      r = co_await api_.remove(std::move(id), std::move(c));
    } else {
      r = co_await api_.cancel(std::move(id), std::move(c));
    }
    if (!r) co_return transport_failure(r.error());
    if (r->status != 200) co_return refused(*r, o_.message_id);
    const std::string line = (remove ? "deleted " : "cancelled ") + o_.message_id + "\n";
    out(line);
    co_return exit_code::ok;
  }

  asio::awaitable<int> list() {
    std::vector<json::value> rows;
    std::string cursor;
    for (;;) {
      CancelPtr c = arm();
      std::string query = list_query(o_.statuses, o_.limit, cursor);
      auto r = co_await api_.list(std::move(query), std::move(c));
      if (!r) co_return transport_failure(r.error());
      if (r->status != 200) co_return refused(*r, "");
      boost::system::error_code ec;
      json::value v = json::parse(r->body, ec);
      const json::value* data = !ec && v.is_object() ? v.get_object().if_contains("data") : nullptr;
      if (!data || !data->is_array()) co_return unexpected(*r);
      for (const auto& item : data->get_array()) {
        if (o_.json) {
          std::string line = json::serialize(item) + "\n";
          out(line);
        } else {
          rows.push_back(item);
        }
      }
      const json::value* next = v.get_object().if_contains("next_cursor");
      if (!o_.all || !next || !next->is_string() || next->get_string().empty()) break;
      cursor = next->get_string();
    }
    if (!o_.json) out(format_list(rows));
    co_return exit_code::ok;
  }

 private:
  std::string prompt_;
  const Options& o_;
  ApiClient api_;
  TerminalInfo term_;
  asio::signal_set signals_;
  asio::steady_timer ticker_;
  asio::steady_timer backoff_;
  ProgressLine progress_;
  SteadyClock::time_point started_;
  CancelPtr current_;
  const EventFolder* folder_ = nullptr;
  int interrupts_ = 0;
  int handled_interrupts_ = 0;
  bool progress_on_ = false;
  bool done_ = false;
  bool output_closed_ = false;
};

}  // namespace

Commands::Commands(CLI::App& app) : opts_(std::make_unique<Options>()) {
  Options& o = *opts_;
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "spool: " + std::string(e.what()) + "\nRun with --help for more information.\n";
  });
  app.footer("Client subcommands talk to a running server (--url, env SPOOL_URL).\n\n" + exit_codes_help());

  o.chat = app.add_subcommand("chat", "Start a chat job and print its reply as it streams (Ctrl-C cancels the job)");
  add_chat_options(*o.chat, o);
  o.chat->add_flag("--json", o.json, "Print every event as one JSON line instead of text");
  o.chat
      ->add_option("--retry-for", o.retry_for,
                   "After a dropped connection, give up (exit 3) after this many seconds without reaching the server")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  o.start = app.add_subcommand("start", "Start a chat job and print its message_id");
  add_chat_options(*o.start, o);
  o.start->add_flag("--json", o.json, "Print the server's whole answer");

  o.watch = app.add_subcommand("watch",
                               "Stream a job's reply, resuming after dropped connections (Ctrl-C only stops watching)");
  o.watch->add_option("ID", o.message_id, "The job's message_id")->required();
  o.watch->add_flag("--json", o.json, "Print every event as one JSON line instead of text");
  o.watch
      ->add_option("--from", o.from,
                   "Start after the event of SSE id N (its 1-based position), or N.I (in a reused id's incarnation I)")
      ->check(CLI::Validator(
          [](const std::string& v) {
            return ResumeTracker::is_event_id(v) ? std::string() : "not an event id (N or N.I): " + v;
          },
          "N or N.I"));
  o.watch
      ->add_option("--retry-for", o.retry_for, "Give up (exit 3) after this many seconds without reaching the server")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  o.status = app.add_subcommand("status", "Show a job's status");
  o.status->add_option("ID", o.message_id, "The job's message_id")->required();
  o.status->add_flag("--json", o.json, "Print the server's JSON");

  o.cancel = app.add_subcommand("cancel", "Cancel a job");
  o.cancel->add_option("ID", o.message_id, "The job's message_id")->required();

  o.rm = app.add_subcommand("rm", "Delete a job (cancelling it first if it is still running)");
  o.rm->add_option("ID", o.message_id, "The job's message_id")->required();

  o.ls = app.add_subcommand("ls", "List jobs, newest first");
  o.ls->add_option("--status", o.statuses,
                   "Only these statuses, comma-separated (pending,processing,completed,cancelled,error)");
  o.ls->add_option("--limit", o.limit, "Jobs per page")->check(CLI::Range(1, 1000))->capture_default_str();
  o.ls->add_flag("--all", o.all, "Follow next_cursor through every page");
  o.ls->add_flag("--json", o.json, "One JSON object per line");

  for (std::size_t i = 0; i < kClientCommands.size(); ++i)
    add_common(*app.get_subcommand(std::string(kClientCommands[i])), o.common[i]);
}

Commands::~Commands() = default;

std::optional<int> Commands::run() {
  Options& o = *opts_;
  std::string which;
  for (CLI::App* cmd : {o.chat, o.start, o.watch, o.status, o.cancel, o.rm, o.ls}) {
    if (cmd->parsed()) which = cmd->get_name();
  }
  if (which.empty()) return std::nullopt;
  const auto index = static_cast<std::size_t>(std::find(kClientCommands.begin(), kClientCommands.end(), which) -
                                              kClientCommands.begin());
  o.url = o.common[index].url;
  o.auth_secret = o.common[index].auth_secret;
  o.quiet = o.common[index].quiet;

  auto base = normalize_base_url(o.url);
  if (!base) {
    std::cerr << "spool: " << base.error().explanation << "\n";
    return exit_code::usage;
  }
  std::string prompt;
  if (which == "chat" || which == "start") {
    if (o.prompt_words.empty()) {
      if (::isatty(STDIN_FILENO) == 1 && ::isatty(STDERR_FILENO) == 1 && !o.quiet) {
        std::cerr << "spool: reading the prompt from standard input (end it with Ctrl-D)\n";
      }
      prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      for (const auto& w : o.prompt_words) {
        if (!prompt.empty()) prompt += ' ';
        prompt += w;
      }
    }
    if (prompt.empty()) {
      std::cerr << "spool: the prompt is empty (give it as arguments or on standard input)\n";
      return exit_code::usage;
    }
  }

  Endpoint ep;
  ep.base_url = *base;
  ep.authorization = o.auth_secret;
  std::signal(SIGPIPE, SIG_IGN);  // a closed standard output is an error from write(), handled above
  asio::io_context io(1);
  Session session(io, o, std::move(ep), std::move(prompt));
  int rc = exit_code::ok;
  asio::co_spawn(io, session.run(which), [&rc](const std::exception_ptr& e, int code) {
    rc = code;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        std::cerr << "spool: internal error: " << ex.what() << "\n";
      }
      rc = exit_code::job_failed;
    }
  });
  io.run();
  return rc;
}

}  // namespace spool::cli
