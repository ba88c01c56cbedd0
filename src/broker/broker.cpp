#include "broker/broker.hpp"

#include "stream/event_log.hpp"

#include <algorithm>

namespace spool {

bool matches(const ListQuery& q, const StreamInfo& info) {
  if (!q.statuses.empty() && std::find(q.statuses.begin(), q.statuses.end(), info.status) == q.statuses.end()) {
    return false;
  }
  if (!q.after) return true;
  const auto& [created, id] = *q.after;
  return info.created_at != created ? info.created_at < created : info.id < id;
}

Error incarnation_conflict(const std::string& id, std::uint64_t after, std::uint32_t wanted, std::uint32_t current) {
  const std::string cursor = "Last-Event-ID " + to_string(EventId{after, wanted});
  const std::string now =
      "the id now names incarnation " + std::to_string(current) + " (resume it from the start, without Last-Event-ID)";
  if (wanted < current) {
    return make_error(Errc::conflict, cursor + " belongs to incarnation " + std::to_string(wanted) + " of stream " +
                                          id + ", which was deleted; " + now);
  }
  return make_error(Errc::conflict, cursor + " names incarnation " + std::to_string(wanted) + " of stream " + id +
                                        ", which it has not reached; " + now);
}

boost::asio::awaitable<Status> Broker::flush(std::string /*id*/) { co_return Ok{}; }

boost::asio::awaitable<Result<bool>> Broker::request_cancel(std::string /*id*/) { co_return false; }

void Broker::on_remote_cancel(const std::function<void(const std::string&)>& /*handler*/) {}

}  // namespace spool
