#include "broker/broker.hpp"

namespace spool {

boost::asio::awaitable<Status> Broker::flush(std::string /*id*/) { co_return Ok{}; }

boost::asio::awaitable<Result<bool>> Broker::request_cancel(std::string /*id*/) { co_return false; }

void Broker::on_remote_cancel(const std::function<void(const std::string&)>& /*handler*/) {}

}  // namespace spool
