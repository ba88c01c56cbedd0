// A real redis-server for tests: started on a free loopback port, stopped (or killed) at will.
#pragma once

#include <sys/types.h>
#include <cstdint>
#include <string>
#include <vector>

namespace spool::testing {

class RedisServer {
 public:
  // Starts `redis-server` (from PATH) on 127.0.0.1 with no persistence; `extra` are more
  // arguments (e.g. {"--requirepass", "pw"}). Throws std::runtime_error if it does not answer
  // within a few seconds.
  explicit RedisServer(std::vector<std::string> extra = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const { return port_; }
  // redis://127.0.0.1:PORT
  std::string url() const;
  // SIGKILL and reap.
  void kill();
  // Starts it again on the same port (after kill()).
  void restart();

 private:
  void start();
  std::vector<std::string> extra_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace spool::testing
