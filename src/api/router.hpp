// The API: every route of §1 on top of the job service, as an http::Handler.
#pragma once

#include "api/cors.hpp"
#include "api/metrics.hpp"
#include "api/origin_guard.hpp"
#include "api/read_token.hpp"
#include "engine/registry.hpp"
#include "http/server.hpp"
#include "jobs/jobs.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace spool {

// One accepted auth secret (§6) and who it is.
struct Tenant {
  std::string name;                      // empty: unnamed
  std::string secret;                    // the whole Authorization header value
  std::size_t max_active_streams = 0;    // its pending+processing streams (0: only the global limit)
  std::size_t max_retained_streams = 0;  // its streams kept, running and finished (0: only the global limit)
};

// Who `t` is as a stream's owner: "tenant:<name>", or for an unnamed secret "secret:" and the
// first 16 hex digits of its SHA-256, so it stays the same when secrets are added or reordered.
std::string tenant_identity(const Tenant& t);

// Settings the routes need.
struct ApiOptions {
  std::string path_prefix;      // routes also answer under this prefix, e.g. "/spool"
  std::vector<Tenant> tenants;  // empty: auth off; else the whole Authorization header must equal a secret
  bool stream_scoping = false;  // a stream is visible only to the secret that created it
  std::chrono::milliseconds ping_interval{15000};
  std::size_t max_observers = 100000;            // open observers on this instance; past it: overloaded
  std::size_t max_observers_per_stream = 10000;  // of one stream on this instance; past it: overloaded
  std::string broker_name = "memory";
  bool web_ui = true;          // serve the playground (web/) at the root, without auth: it holds no data
  OriginPolicy origins;        // with auth off: the Host names and Origins accepted
  CorsPolicy cors;             // pages on other origins that may call the API (off: no origins)
  std::string read_token_key;  // signs read tokens; empty: derived from the tenants' secrets
  std::chrono::seconds read_token_ttl{86400};  // how long a start's read token stays valid
};

// Routes requests to the job service; owns the SSE body sources.
class Router final : public http::Handler, public http::ErrorResponder {
 public:
  Router(ApiOptions opts, Jobs& jobs, Metrics& metrics);
  boost::asio::awaitable<http::Response> handle(http::Request req) override;
  http::Response protocol_error(http::ProtocolError e) override;

 private:
  struct Call;  // one request being answered
  using Handle = boost::asio::awaitable<http::Response> (Router::*)(Call&);
  // Who may call a route: anyone (health), only with a configured secret (when auth is on), or
  // also with a read token of the stream it names (§6).
  enum class Access { open, secret, secret_or_token };
  // One entry of the route table.
  struct Route {
    std::string_view name;    // in metrics and logs
    std::string_view method;  // GET, POST, DELETE
    std::string_view path;    // segments after the prefix; ":id" is a stream id
    Handle handler;
    Access access;
  };
  static const Route kRoutes[];

  // Routes the call through the table, the guard and auth (the middleware of handle()).
  boost::asio::awaitable<http::Response> dispatch(Call& call);
  // The route whose path matches the call (with its method, when one does: method_ok); nullptr when none.
  const Route* find_route(Call& call, bool& method_ok) const;
  // With auth off: the answer refusing a Host or Origin a page elsewhere could send (§6), or nullopt.
  std::optional<http::Response> guard(Call& call) const;
  // With auth on: the 401 for a caller without a configured secret (else records who it is), or nullopt.
  std::optional<http::Response> authenticate(Call& call) const;
  // With auth on and no secret: the incarnation of call.id a valid ?read_token= grants, or nullopt.
  std::optional<std::uint32_t> token_grant(const Call& call, const Route& route) const;
  // The 404 when the stream a read token was issued for is gone (deleted, or its id used again), or nullopt.
  boost::asio::awaitable<std::optional<http::Response>> token_stream_gone(const Call& call, std::uint32_t incarnation);
  // The job a start or a synchronous message asks for (body, model, trace context, owner, limits).
  Result<StartJob> job_of(Call& call) const;

  boost::asio::awaitable<http::Response> start(Call& call);
  boost::asio::awaitable<http::Response> observe(Call& call);
  boost::asio::awaitable<http::Response> status(Call& call);
  // GET /v1/messages/async: the caller's streams, newest first (?status=, ?limit=, ?cursor=).
  boost::asio::awaitable<http::Response> list(Call& call);
  boost::asio::awaitable<http::Response> cancel(Call& call);
  boost::asio::awaitable<http::Response> remove(Call& call);
  boost::asio::awaitable<http::Response> message(Call& call);
  boost::asio::awaitable<http::Response> count_tokens(Call& call);
  boost::asio::awaitable<http::Response> validate(Call& call);
  boost::asio::awaitable<http::Response> health(Call& call);
  boost::asio::awaitable<http::Response> metrics(Call& call);
  boost::asio::awaitable<http::Response> models(Call& call);
  // The playground's file at `call.segments` (GET only), or nullopt when the path names none.
  std::optional<http::Response> web_asset(const Call& call) const;
  // not_found unless the caller may see `id` (stream scoping).
  boost::asio::awaitable<Status> visible(const Call& call, std::string id);

  ApiOptions opts_;
  std::vector<std::string> prefix_;        // path_prefix split into segments
  std::vector<std::string> identities_;    // tenant_identity() of each of opts_.tenants
  std::optional<ReadTokens> read_tokens_;  // with auth on
  Jobs& jobs_;
  Metrics& metrics_;
};

}  // namespace spool
