// The Redis broker's write path: what a writer owes Redis, and batches of commands whose replies
// each go to their own handler.
#pragma once

#include "broker/redis_connection.hpp"
#include "stream/stream_info.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace spool {

// A flush() waiting for its stream's writes, and the executor to resume it on.
struct FlushWaiter {
  boost::asio::any_io_executor ex;
  boost::asio::any_completion_handler<void(Status)> h;

  // Resumes the waiter with `st` on its executor.
  void resume(Status st) &&;
};

// What a writer still owes Redis for one stream.
struct RedisOutbox {
  // How much of an outbox one batch carries.
  // What a batch carried: what its success settles. A field queued anew while the batch was
  // in flight differs from the one sent, and stays owed.
  struct Taken {
    std::size_t events = 0;
    std::optional<StreamStatus> status;
    std::optional<std::string> error_message;
    std::optional<Usage> usage;
    std::optional<std::optional<int>> queue_position;
    bool terminal = false;  // the batch ends the stream
  };

  std::vector<std::pair<std::uint64_t, NewEvent>> events;  // (position, event)
  std::optional<StreamStatus> status;
  std::optional<std::string> error_message;
  std::optional<Usage> usage;
  std::optional<std::optional<int>> queue_position;

  // Nothing is owed.
  bool empty() const { return events.empty() && !status && !error_message && !usage && !queue_position; }
  // What a batch built now carries.
  Taken taken() const;
  // Forgets what `t` carried (it is stored); what was queued since stays.
  void drop(const Taken& t);
};

// Commands sent in one pipeline, each with the handler of its reply.
class RedisBatch {
 public:
  using OnReply = std::function<void(const RedisValue&)>;

  // Adds `c`, whose reply goes to `on_reply` (none: ignored).
  void add(std::vector<std::string> c, OnReply on_reply = {});
  // No command was added.
  bool empty() const { return commands_.empty(); }
  // The commands, to send (once).
  std::vector<std::vector<std::string>> take_commands() { return std::move(commands_); }
  // Hands each reply to its command's handler, in order.
  void dispatch(const std::vector<RedisValue>& replies) const;

 private:
  std::vector<std::vector<std::string>> commands_;
  std::vector<OnReply> handlers_;
};

}  // namespace spool
