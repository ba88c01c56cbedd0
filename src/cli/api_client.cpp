#include "cli/api_client.hpp"

#include "cli/requests.hpp"

namespace spool::cli {

namespace asio = boost::asio;

namespace {
constexpr std::string_view kAsync = "/v1/messages/async";

// The path of route `action` of job `id`: /v1/messages/async/{id}/{action}.
std::string job_path(const std::string& id, std::string_view action) {
  return std::string(kAsync) + "/" + percent_encode(id) + "/" + std::string(action);
}
}  // namespace

http::ClientRequest ApiClient::request(std::string method, const std::string& path) const {
  http::ClientRequest req;
  req.method = std::move(method);
  req.url = ep_.base_url + path;
  if (!ep_.authorization.empty()) req.headers.emplace_back("Authorization", ep_.authorization);
  req.connect_timeout = ep_.connect_timeout;
  req.first_byte_timeout = ep_.answer_timeout;
  req.idle_timeout = ep_.answer_timeout;
  return req;
}

asio::awaitable<Result<Reply>> ApiClient::call(std::string method, std::string path, std::string body,
                                               CancelPtr cancel) {
  http::ClientRequest req = request(std::move(method), path);
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
  req.body = std::move(body);
  auto reply = std::make_shared<Reply>();
  std::function<void(const http::ClientResponseHead&)> on_head = [reply](const http::ClientResponseHead& h) {
    reply->status = h.status;
  };
  std::function<bool(std::string_view)> on_data = [reply](std::string_view d) {
    reply->body.append(d);
    return true;
  };
  Status st = co_await http::stream_request(std::move(req), std::move(on_head), std::move(on_data), std::move(cancel));
  if (!st) co_return st.error();
  co_return std::move(*reply);
}

asio::awaitable<Result<Reply>> ApiClient::start(std::string body, std::string message_id, CancelPtr cancel) {
  std::string path(kAsync);
  if (!message_id.empty()) path += "?message_id=" + percent_encode(message_id);
  std::string method = "POST";
  co_return co_await call(std::move(method), std::move(path), std::move(body), std::move(cancel));
}

asio::awaitable<Result<Reply>> ApiClient::status(std::string id, CancelPtr cancel) {
  std::string path = job_path(id, "status");
  std::string method = "GET";
  std::string body;
  co_return co_await call(std::move(method), std::move(path), std::move(body), std::move(cancel));
}

asio::awaitable<Result<Reply>> ApiClient::cancel(std::string id, CancelPtr cancel) {
  std::string path = job_path(id, "cancel");
  std::string method = "POST";
  std::string body;
  co_return co_await call(std::move(method), std::move(path), std::move(body), std::move(cancel));
}

asio::awaitable<Result<Reply>> ApiClient::remove(std::string id, CancelPtr cancel) {
  std::string path = job_path(id, "delete");
  std::string method = "DELETE";
  std::string body;
  co_return co_await call(std::move(method), std::move(path), std::move(body), std::move(cancel));
}

asio::awaitable<Result<Reply>> ApiClient::list(std::string query, CancelPtr cancel) {
  std::string path = std::string(kAsync) + query;
  std::string method = "GET";
  std::string body;
  co_return co_await call(std::move(method), std::move(path), std::move(body), std::move(cancel));
}

asio::awaitable<Result<Reply>> ApiClient::stream(std::string id, std::string after, std::function<void(int)> on_status,
                                                 std::function<bool(SseEvent&&)> on_event, CancelPtr cancel) {
  http::ClientRequest req = request("GET", job_path(id, "stream"));
  req.headers.emplace_back("Accept", "text/event-stream");
  if (!after.empty()) req.headers.emplace_back("Last-Event-ID", std::move(after));
  req.idle_timeout = ep_.stream_idle_timeout;
  auto reply = std::make_shared<Reply>();
  auto parser = std::make_shared<SseParser>(std::move(on_event));
  std::function<void(const http::ClientResponseHead&)> on_head =
      [reply, on_status = std::move(on_status)](const http::ClientResponseHead& h) {
        reply->status = h.status;
        if (on_status) on_status(h.status);
      };
  std::function<bool(std::string_view)> on_data = [reply, parser](std::string_view d) {
    if (reply->status != 200) {
      reply->body.append(d);
      return true;
    }
    return parser->feed(d);
  };
  Status st = co_await http::stream_request(std::move(req), std::move(on_head), std::move(on_data), std::move(cancel));
  if (!st) co_return st.error();
  co_return std::move(*reply);
}

}  // namespace spool::cli
