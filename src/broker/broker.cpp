#include "broker/broker.hpp"

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

boost::asio::awaitable<Status> Broker::flush(std::string /*id*/) { co_return Ok{}; }

boost::asio::awaitable<Result<bool>> Broker::request_cancel(std::string /*id*/) { co_return false; }

void Broker::on_remote_cancel(const std::function<void(const std::string&)>& /*handler*/) {}

}  // namespace spool
