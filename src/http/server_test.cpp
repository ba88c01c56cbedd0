// The HTTP server over a socket pair (userver's MakeSocketPair): one end is handed to the server
// with adopt(), the test speaks raw HTTP on the other, with a deadline on every read.
#include "http/server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

namespace spool::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A body that sends `chunk` until aborted; records why it was aborted.
class EndlessBody final : public BodySource {
 public:
  EndlessBody(asio::any_io_executor ex, std::string chunk, std::atomic<int>* aborted)
      : timer_(std::move(ex)), chunk_(std::move(chunk)), aborted_(aborted) {}
  asio::awaitable<ResponseHead> head() override {
    ResponseHead h;
    h.content_type = "text/event-stream";
    co_return h;
  }
  asio::awaitable<BodyChunk> next() override {
    if (why_) co_return BodyChunk{{}, true};
    timer_.expires_after(1ms);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    buf_ = asio::buffer(chunk_);
    co_return BodyChunk{{&buf_, 1}, why_.has_value()};
  }
  void abort(AbortReason why) override {
    why_ = why;
    aborted_->store(why == AbortReason::client_gone ? 1 : 2);
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  std::string chunk_;
  asio::const_buffer buf_;
  std::optional<AbortReason> why_;
  std::atomic<int>* aborted_;
};

// Answers /stream with an endless body (of `chunk_size` bytes per chunk) and anything else with
// its target as text.
class TestHandler final : public Handler, public ErrorResponder {
 public:
  std::atomic<int> aborted{0};  // 1: client_gone, 2: shutdown
  std::size_t chunk_size = 16;
  asio::awaitable<Response> handle(Request req) override {
    Response r;
    if (req.target == "/stream") {
      r.source = std::make_unique<EndlessBody>(req.executor, std::string(chunk_size, 'x'), &aborted);
      co_return r;
    }
    r.content_type = "text/plain";
    r.body = req.target;
    co_return r;
  }
  Response protocol_error(ProtocolError) override {
    Response r;
    r.status = 400;
    return r;
  }
};

// A server on its own io thread, and the test's end of socket pairs to it.
class ServerOverSocketPair : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    server_ = std::make_unique<Server>(std::vector<asio::io_context*>{&io_}, o, handler_, handler_);
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) {
      std::promise<void> done;
      server_->shutdown([&] { done.set_value(); });
      EXPECT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
    }
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // The client end of a new connection whose server end the server adopted.
  tcp::socket pair() {
    asio::io_context local;
    tcp::acceptor acceptor(local, {asio::ip::make_address("127.0.0.1"), 0});
    tcp::socket client(client_io_);
    client.connect(acceptor.local_endpoint());
    tcp::socket server_end(io_);
    acceptor.accept(server_end);
    server_->adopt(std::move(server_end));
    timeval tv{5, 0};  // every blocking read of the test gives up after 5 s
    ::setsockopt(client.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return client;
  }

  // Reads until `n` bytes arrived, the peer closed, or 5 s passed.
  static std::string read_some(tcp::socket& s, std::size_t n) {
    std::string out(n, '\0');
    boost::system::error_code ec;
    const std::size_t got = asio::read(s, asio::buffer(out), ec);
    out.resize(got);
    return out;
  }
  static std::string read_to_end(tcp::socket& s) {
    std::string out;
    std::array<char, 4096> buf{};
    for (;;) {
      boost::system::error_code ec;
      const std::size_t n = s.read_some(asio::buffer(buf), ec);
      out.append(buf.data(), n);
      if (ec) return out;
    }
  }
  template <class F>
  static bool eventually(F f, std::chrono::milliseconds limit = 5s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!f()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }

  asio::io_context io_, client_io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
  TestHandler handler_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

std::string plain(std::string_view target, bool close = false) {
  return "HTTP/1.1 200 OK\r\nServer: spool\r\nContent-Type: text/plain\r\n" +
         std::string(close ? "Connection: close\r\n" : "") + "Content-Length: " + std::to_string(target.size()) +
         "\r\n\r\n" + std::string(target);
}

TEST_F(ServerOverSocketPair, PipelinedRequestsAreAnsweredInOrderByteForByte) {
  start();
  auto s = pair();
  asio::write(s, asio::buffer(std::string("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /bb HTTP/1.1\r\nHost: x\r\n\r\n"
                                          "GET /ccc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")));
  EXPECT_EQ(read_to_end(s), plain("/a") + plain("/bb") + plain("/ccc", true));
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(ServerOverSocketPair, AClientLeavingMidStreamAbortsTheBodyAndFreesTheConnection) {
  start();
  auto s = pair();
  asio::write(s, asio::buffer(std::string("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")));
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nServer: spool\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(read_some(s, head.size()), head);
  EXPECT_EQ(read_some(s, 32), std::string(32, 'x'));
  s.close();
  EXPECT_TRUE(eventually([&] { return handler_.aborted.load() == 1; })) << "the body learns the client left";
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(ServerOverSocketPair, AStalledReaderIsDroppedByTheWriteWatchdog) {
  ServerOptions o;
  o.write_timeout = 200ms;
  handler_.chunk_size = 256 * 1024;  // fills the socket buffers fast
  start(o);
  auto s = pair();
  const int small = 4096;
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  asio::write(s, asio::buffer(std::string("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")));
  // Read nothing: the server's write stalls, and the watchdog closes the connection.
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; })) << "still open after 5 s";
}

const std::string kRefused =
    "HTTP/1.1 400 Bad Request\r\nServer: spool\r\nContent-Type: application/json\r\nConnection: close\r\n"
    "Content-Length: 0\r\n\r\n";

TEST_F(ServerOverSocketPair, ABodyOverTheLimitIsAnsweredThenDrainedNotReset) {
  ServerOptions o;
  o.body_limit = 1024;
  start(o);
  auto s = pair();
  const std::size_t body = std::size_t{1024} * 1024;
  asio::write(s, asio::buffer("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body) + "\r\n\r\n"));
  const std::string chunk(std::size_t{64} * 1024, 'b');
  asio::write(s, asio::buffer(chunk));
  EXPECT_EQ(read_some(s, kRefused.size()), kRefused);
  // the client goes on sending the body it announced, as fetch does, and meets no reset
  boost::system::error_code ec;
  for (std::size_t sent = chunk.size(); sent < body && !ec; sent += chunk.size()) {
    asio::write(s, asio::buffer(chunk), ec);
  }
  EXPECT_FALSE(ec) << ec.message();
  s.shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, 1> one{};
  s.read_some(asio::buffer(one), ec);
  EXPECT_EQ(ec, asio::error::eof) << ec.message();
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(ServerOverSocketPair, DrainingIsBoundedInBytes) {
  ServerOptions o;
  o.body_limit = 1024;
  o.linger_bytes = 128 * 1024;
  start(o);
  auto s = pair();
  asio::write(s, asio::buffer(std::string("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")));
  EXPECT_EQ(read_some(s, kRefused.size()), kRefused);
  const std::string chunk(std::size_t{64} * 1024, 'b');
  boost::system::error_code ec;
  for (int i = 0; i < 1000 && !ec; ++i) asio::write(s, asio::buffer(chunk), ec);
  EXPECT_TRUE(ec) << "the server stops reading after linger_bytes";
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(ServerOverSocketPair, DrainingIsBoundedInTime) {
  ServerOptions o;
  o.body_limit = 1024;
  o.linger_idle = 100ms;
  start(o);
  auto s = pair();
  asio::write(s, asio::buffer(std::string("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")));
  EXPECT_EQ(read_some(s, kRefused.size()), kRefused);
  // a client that sends nothing more is closed once linger_idle passes
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }, 3s));
}

TEST_F(ServerOverSocketPair, ShutdownEndsStreamsAndIdleConnectionsThenCallsDone) {
  start();
  auto idle = pair();
  asio::write(idle, asio::buffer(std::string("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_EQ(read_some(idle, plain("/first").size()), plain("/first"));  // then kept alive, idle
  auto streaming = pair();
  asio::write(streaming, asio::buffer(std::string("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_FALSE(read_some(streaming, 64).empty());
  ASSERT_EQ(server_->connections(), 2u);
  std::promise<void> done;
  server_->shutdown([&] { done.set_value(); });
  ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  server_.reset();
  EXPECT_EQ(handler_.aborted.load(), 2) << "the body was told the server is stopping";
  read_to_end(streaming);  // ends (EOF), not after the 5 s read deadline
  std::array<char, 1> one{};
  boost::system::error_code ec;
  idle.read_some(asio::buffer(one), ec);
  EXPECT_EQ(ec, asio::error::eof) << ec.message();
}

}  // namespace
}  // namespace spool::http
