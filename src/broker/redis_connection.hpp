// One connection to Redis, driven from an Asio event loop: commands are pipelined (every command
// issued while others are in flight goes out in the same write), replies come back in order.
// hiredis formats the commands and parses RESP; the socket is Asio's. Only this unit and the
// Redis broker know Redis.
#pragma once

#include "core/result.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spool {

// Where Redis is: parsed from redis://[:password@]host[:port][/db] (also redis://user:password@...).
struct RedisEndpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username;  // empty: AUTH with the password only
  std::string password;  // empty: no AUTH
  int db = 0;

  // Parses a redis:// URL; invalid_request naming what is wrong otherwise.
  static Result<RedisEndpoint> parse(std::string_view url);
  // host:port, for messages (never the password).
  std::string where() const;
};

// One reply, owned (RESP2 types).
struct RedisValue {
  enum class Type { nil, integer, string, status, error, array };
  Type type = Type::nil;
  std::int64_t integer = 0;
  std::string str;  // string, status and error
  std::vector<RedisValue> elements;

  bool is_nil() const { return type == Type::nil; }
  bool is_error() const { return type == Type::error; }
  bool is_array() const { return type == Type::array; }
  bool is_string() const { return type == Type::string || type == Type::status; }
};

// A command's arguments as strings: redis_args("SET", key, value). (g++ 12 miscompiles a braced
// list written inside a co_await expression, so build commands with this, outside co_await.)
template <class... A>
std::vector<std::string> redis_args(A&&... args) {
  return std::vector<std::string>{std::string(std::forward<A>(args))...};
}

// A pipelined connection. Every member function may be called from any thread; completions run
// on the caller's executor. After a connection failure every pending and later command fails with
// broker_unavailable until connect() succeeds again.
class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  // Messages that are not replies (pub/sub): the array ["message", channel, payload], etc.
  using PushHandler = std::function<void(RedisValue)>;

  // The connection's I/O runs on `ex` (one thread).
  static std::shared_ptr<RedisConnection> create(const boost::asio::any_io_executor& ex, RedisEndpoint endpoint,
                                                 std::chrono::milliseconds connect_timeout);
  ~RedisConnection();

  // Connects (resolve, TCP, AUTH, SELECT), closing any previous socket; broker_unavailable on failure.
  boost::asio::awaitable<Status> connect();

  // Sends one command (`args[0]` is its name) and returns its reply; a Redis error reply is a
  // RedisValue of type error, not a failed Result, except the replies that say Redis cannot
  // answer now (LOADING, BUSY, MASTERDOWN, …): those fail with broker_unavailable.
  boost::asio::awaitable<Result<RedisValue>> command(std::vector<std::string> args);

  // Sends several commands in one write and returns their replies in order (all or nothing).
  boost::asio::awaitable<Result<std::vector<RedisValue>>> pipeline(std::vector<std::vector<std::string>> commands);

  // Receives the messages that are not replies to a command (after SUBSCRIBE). Set before connect().
  void set_push_handler(PushHandler h);

  // Called (on the connection's executor) when an established connection fails. Set before connect().
  void set_lost_handler(std::function<void(std::string why)> h);

  // True between a successful connect() and a failure or close().
  bool connected() const;

  // Closes the socket; pending commands fail.
  void close();

  // Destroys the pending commands' completions without running them: at teardown, when nothing
  // runs the connection's executor any more (they may hold coroutines that hold this connection's
  // owner, a cycle close() cannot break once its posted work will never run).
  void abandon();

  struct Impl;

 private:
  explicit RedisConnection(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace spool
