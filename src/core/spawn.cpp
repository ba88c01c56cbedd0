#include "core/spawn.hpp"

#include "core/log.hpp"

namespace spool {

std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

void log_escaped(const std::string& what, const std::string& why) {
  log_event(spdlog::level::err, "coroutine ended by an exception", {{"task", what}, {"error", why}});
}

}  // namespace spool
