// Tests for the outbound streaming client against a scripted loopback server.
#include "http/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace spool::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// A loopback server on a random port running `script` for each accepted connection, on its own thread.
// The script gets the socket and the request bytes (head and Content-Length body).
class ScriptServer {
 public:
  using Script = std::function<asio::awaitable<void>(tcp::socket&, std::string)>;

  explicit ScriptServer(Script script)
      : script_(std::move(script)), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ScriptServer() {
    io_.stop();
    thread_.join();
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  std::string url(const std::string& path = "/v1/chat") const {
    return "http://127.0.0.1:" + std::to_string(port()) + path;
  }
  std::string last_request() {
    std::lock_guard lock(mu_);
    return last_request_;
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      asio::co_spawn(io_, serve(std::move(sock)), asio::detached);
    }
  }
  asio::awaitable<void> serve(tcp::socket s) {
    std::string req;
    auto [ec, n] = co_await asio::async_read_until(s, asio::dynamic_buffer(req), "\r\n\r\n", use_tuple);
    if (ec) co_return;
    const auto lower = [](std::string v) {
      for (auto& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return v;
    };
    const auto pos = lower(req.substr(0, n)).find("content-length: ");
    if (pos != std::string::npos) {
      const std::size_t want = n + std::stoul(req.substr(pos + 16));
      if (req.size() < want) {
        auto [ec2, n2] = co_await asio::async_read(s, asio::dynamic_buffer(req),
                                                   asio::transfer_exactly(want - req.size()), use_tuple);
        if (ec2) co_return;
      }
    }
    {
      std::lock_guard lock(mu_);
      last_request_ = req;
    }
    co_await script_(s, req);
  }

  Script script_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mu_;
  std::string last_request_;
};

asio::awaitable<void> send(tcp::socket& s, std::string bytes) {
  co_await asio::async_write(s, asio::buffer(bytes), use_tuple);
}
asio::awaitable<void> pause(tcp::socket& s, std::chrono::milliseconds d) {
  asio::steady_timer t(s.get_executor());
  t.expires_after(d);
  co_await t.async_wait(use_tuple);
}
// Waits until the client closes the connection (or the server stops).
asio::awaitable<void> wait_close(tcp::socket& s) {
  char b[256];
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(b), use_tuple);
    if (ec) co_return;
  }
}
std::string chunk(std::string_view data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return std::string(size) + std::string(data) + "\r\n";
}

// What one stream_request() call produced.
struct Outcome {
  Status status;
  ClientResponseHead head;
  int heads = 0;
  std::string body;
  std::vector<std::string> pieces;
  std::chrono::milliseconds elapsed{};
};

Outcome run(ClientRequest req, std::shared_ptr<ClientCancel> cancel = nullptr,
            std::function<bool(const Outcome&)> keep_going = nullptr) {
  asio::io_context io;
  Outcome out;
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(io,
                 stream_request(
                     std::move(req),
                     [&](const ClientResponseHead& h) {
                       out.head = h;
                       ++out.heads;
                     },
                     [&](std::string_view d) {
                       out.body += d;
                       out.pieces.emplace_back(d);
                       return keep_going ? keep_going(out) : true;
                     },
                     std::move(cancel)),
                 [&](std::exception_ptr e, Status st) {
                   if (e) std::rethrow_exception(e);
                   out.status = std::move(st);
                 });
  io.run();
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  return out;
}

ClientRequest request(std::string url) {
  ClientRequest r;
  r.url = std::move(url);
  r.body = R"({"stream":true})";
  r.headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer k"}};
  r.connect_timeout = 1000ms;
  r.first_byte_timeout = 1000ms;
  r.idle_timeout = 1000ms;
  return r;
}

std::string where(const ScriptServer& s) { return "upstream 127.0.0.1:" + std::to_string(s.port()) + ": "; }

TEST(HttpClient, StreamsChunkedSseInPieces) {
  ScriptServer srv([](tcp::socket& s, std::string) -> asio::awaitable<void> {
    co_await send(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
    co_await pause(s, 30ms);
    co_await send(s, chunk("data: {\"a\":1}\n\n"));
    co_await pause(s, 30ms);
    co_await send(s, chunk("data: {\"b\":"));  // an event split across chunks
    co_await pause(s, 30ms);
    co_await send(s, chunk("2}\n\ndata: [DONE]\n\n") + "0\r\n\r\n");
    co_await wait_close(s);
  });
  auto out = run(request(srv.url()));
  ASSERT_TRUE(out.status.ok()) << out.status.error().explanation;
  EXPECT_EQ(out.heads, 1);
  EXPECT_EQ(out.head.status, 200);
  ASSERT_NE(out.head.header("content-type"), nullptr);
  EXPECT_EQ(*out.head.header("content-type"), "text/event-stream");
  EXPECT_EQ(out.body, "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n");
  EXPECT_GE(out.pieces.size(), 3u);  // delivered as it arrived, not at the end
  EXPECT_EQ(out.pieces.front(), "data: {\"a\":1}\n\n");

  const std::string req = srv.last_request();
  EXPECT_EQ(req.rfind("POST /v1/chat HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("\r\nHost: 127.0.0.1:" + std::to_string(srv.port()) + "\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\nContent-Length: 15\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\nConnection: close\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\nAuthorization: Bearer k\r\n"), std::string::npos) << req;
  EXPECT_TRUE(req.ends_with("\r\n\r\n{\"stream\":true}")) << req;
}

TEST(HttpClient, ContentLengthBodyAndHeaderOverrides) {
  ScriptServer srv([](tcp::socket& s, std::string) -> asio::awaitable<void> {
    co_await send(s, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Upstream: yes\r\n\r\nhello");
    co_await pause(s, 20ms);
    co_await send(s, " world");
    co_await wait_close(s);  // the client must stop at Content-Length, not wait for close
  });
  auto r = request(srv.url("/v1/models?x=1"));
  r.method = "GET";
  r.body.clear();
  r.headers = {{"accept", "application/json"}};
  auto out = run(r);
  ASSERT_TRUE(out.status.ok()) << out.status.error().explanation;
  EXPECT_EQ(out.body, "hello world");
  ASSERT_NE(out.head.header("x-upstream"), nullptr);
  EXPECT_LT(out.elapsed, 900ms);
  const std::string req = srv.last_request();
  EXPECT_EQ(req.rfind("GET /v1/models?x=1 HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_EQ(req.find("Content-Length"), std::string::npos) << req;
  EXPECT_EQ(req.find("Accept: */*"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\naccept: application/json\r\n"), std::string::npos) << req;
}

TEST(HttpClient, ErrorStatusDeliversHeadAndBody) {
  const std::string err = R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}})";
  ScriptServer srv([&](tcp::socket& s, std::string) -> asio::awaitable<void> {
    co_await send(s, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: " +
                         std::to_string(err.size()) + "\r\n\r\n" + err);
    co_await wait_close(s);
  });
  auto out = run(request(srv.url()));
  ASSERT_TRUE(out.status.ok()) << out.status.error().explanation;
  EXPECT_EQ(out.head.status, 401);
  EXPECT_EQ(out.body, err);
}

TEST(HttpClient, BodyEndingWithConnectionClose) {
  ScriptServer srv([](tcp::socket& s, std::string) -> asio::awaitable<void> {
    co_await send(s, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall ");
    co_await pause(s, 20ms);
    co_await send(s, "of it");
    s.close();
  });
  auto out = run(request(srv.url()));
  ASSERT_TRUE(out.status.ok()) << out.status.error().explanation;
  EXPECT_EQ(out.body, "all of it");
}

TEST(HttpClient, ClosedMidBody) {
  ScriptServer srv([](tcp::socket& s, std::string) -> asio::awaitable<void> {
    co_await send(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("data: 1\n\n"));
    co_await pause(s, 20ms);
    s.close();
  });
  auto out = run(request(srv.url()));
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.status.error().code, Errc::upstream);
  EXPECT_EQ(out.status.error().explanation, where(srv) + "connection closed before the response ended");
  EXPECT_EQ(out.body, "data: 1\n\n");
}

TEST(HttpClient, ClosedBeforeHead) {
  ScriptServer srv([](tcp::socket& s, std::string) -> asio::awaitable<void> {
    s.close();
    co_return;
  });
  auto out = run(request(srv.url()));
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.status.error().explanation, where(srv) + "connection closed before the response head arrived");
  EXPECT_EQ(out.heads, 0);
}

TEST(HttpClient, MalformedResponse) {
  ScriptServer srv([](tcp::socket& s, std::string) -> asio::awaitable<void> {
    co_await send(s, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
    co_await wait_close(s);
  });
  auto out = run(request(srv.url()));
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.status.error().explanation.rfind(where(srv) + "malformed HTTP response: ", 0), 0u)
      << out.status.error().explanation;
}

TEST(HttpClient, FirstByteTimeout) {
  ScriptServer srv([](tcp::socket& s, std::string) -> asio::awaitable<void> { co_await wait_close(s); });
  auto r = request(srv.url());
  r.first_byte_timeout = 200ms;
  auto out = run(r);
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.status.error().explanation,
            where(srv) + "first-byte timeout: no response head within 200 ms of sending the request");
  EXPECT_GE(out.elapsed, 190ms);
  EXPECT_LT(out.elapsed, 700ms);
}

TEST(HttpClient, IdleTimeoutAfterTrickle) {
  ScriptServer srv([](tcp::socket& s, std::string) -> asio::awaitable<void> {
    co_await send(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 4; ++i) {  // 4 × 120 ms: longer in total than the idle timeout, never idle that long
      co_await pause(s, 120ms);
      co_await send(s, chunk("x"));
    }
    co_await wait_close(s);  // then stall
  });
  auto r = request(srv.url());
  r.idle_timeout = 200ms;
  auto out = run(r);
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.status.error().explanation, where(srv) + "idle timeout: no data for 200 ms");
  EXPECT_EQ(out.body, "xxxx");
  EXPECT_GE(out.elapsed, 4 * 120ms + 190ms);
  EXPECT_LT(out.elapsed, 1500ms);
}

TEST(HttpClient, ConnectionRefused) {
  unsigned short port = 0;
  {
    asio::io_context io;
    tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  auto out = run(request("http://127.0.0.1:" + std::to_string(port) + "/"));
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.status.error().code, Errc::upstream);
  EXPECT_EQ(out.status.error().explanation, "upstream 127.0.0.1:" + std::to_string(port) + ": connection refused");
}

TEST(HttpClient, DnsFailure) {
  auto out = run(request("http://no-such-host.invalid:8000/v1"));
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.status.error().code, Errc::upstream);
  EXPECT_EQ(out.status.error().explanation.rfind(
                "upstream no-such-host.invalid:8000: could not resolve no-such-host.invalid: ", 0),
            0u)
      << out.status.error().explanation;
}

TEST(HttpClient, TlsHandshakeFailure) {
  // A plain HTTP server answering the ClientHello with HTTP: the handshake must fail, not hang.
  // (ScriptServer waits for "\r\n\r\n", which a ClientHello never has, so use a bare acceptor.)
  asio::io_context sio;
  tcp::acceptor a(sio, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = a.local_endpoint().port();
  std::thread t([&] {
    tcp::socket s(sio);
    a.accept(s);
    asio::write(s, asio::buffer(std::string("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")));
    char b[4096];
    boost::system::error_code ec;
    s.read_some(asio::buffer(b), ec);
  });
  auto out = run(request("https://127.0.0.1:" + std::to_string(port) + "/"));
  t.join();
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.status.error().explanation.rfind(
                "upstream 127.0.0.1:" + std::to_string(port) + ": TLS handshake failed: ", 0),
            0u)
      << out.status.error().explanation;
}

TEST(HttpClient, CancelFromAnotherThreadMidStream) {
  ScriptServer srv([](tcp::socket& s, std::string) -> asio::awaitable<void> {
    co_await send(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (;;) {
      co_await pause(s, 20ms);
      auto [ec, n] = co_await asio::async_write(s, asio::buffer(chunk("data: tick\n\n")), use_tuple);
      if (ec) co_return;
    }
  });
  auto cancel = std::make_shared<ClientCancel>();
  std::thread canceller([cancel] {
    std::this_thread::sleep_for(150ms);
    cancel->cancel();
  });
  auto out = run(request(srv.url()), cancel);
  canceller.join();
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.status.error().code, Errc::upstream);
  EXPECT_EQ(out.status.error().explanation, "cancelled");
  EXPECT_FALSE(out.body.empty());
  EXPECT_LT(out.elapsed, 500ms);
  EXPECT_TRUE(cancel->cancelled());
}

TEST(HttpClient, CancelWhileWaitingForHeadAndBeforeStart) {
  ScriptServer srv([](tcp::socket& s, std::string) -> asio::awaitable<void> { co_await wait_close(s); });
  auto cancel = std::make_shared<ClientCancel>();
  std::thread canceller([cancel] {
    std::this_thread::sleep_for(100ms);
    cancel->cancel();
  });
  auto out = run(request(srv.url()), cancel);
  canceller.join();
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.status.error().explanation, "cancelled");
  EXPECT_LT(out.elapsed, 500ms);

  auto again = run(request(srv.url()), cancel);  // already cancelled: returns at once
  ASSERT_FALSE(again.status.ok());
  EXPECT_EQ(again.status.error().explanation, "cancelled");
  EXPECT_EQ(again.heads, 0);
}

TEST(HttpClient, OnDataFalseStops) {
  ScriptServer srv([](tcp::socket& s, std::string) -> asio::awaitable<void> {
    co_await send(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("one"));
    co_await pause(s, 20ms);
    co_await send(s, chunk("two"));
    co_await pause(s, 20ms);
    co_await send(s, chunk("three"));
    co_await wait_close(s);  // never ends the body; the client must stop on its own
  });
  auto out = run(request(srv.url()), nullptr, [](const Outcome& o) { return o.body != "onetwo"; });
  ASSERT_TRUE(out.status.ok()) << out.status.error().explanation;
  EXPECT_EQ(out.body, "onetwo");
  EXPECT_LT(out.elapsed, 500ms);
}

TEST(HttpClient, BadUrl) {
  auto out = run(request("ftp://example.com/x"));
  ASSERT_FALSE(out.status.ok());
  EXPECT_EQ(out.status.error().code, Errc::invalid_request);
  auto out2 = run(request("not a url"));
  ASSERT_FALSE(out2.status.ok());
  EXPECT_EQ(out2.status.error().code, Errc::invalid_request);
}

}  // namespace
}  // namespace spool::http
