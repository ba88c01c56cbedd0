// Coroutines that nobody awaits: the one place where what escapes them ends up.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <exception>
#include <functional>
#include <string>
#include <utility>

namespace spool {

// What an exception caught at the top of a detached coroutine says (its what(), or "unknown exception").
std::string describe(const std::exception_ptr& e);

// Logs that the detached coroutine `what` ended with the exception `why`.
void log_escaped(const std::string& what, const std::string& why);

// Called with the exception's description when a detached coroutine ends by an exception: it
// ends the job, closes the connection or restarts the loop that coroutine was responsible for.
using OnEscape = std::function<void(const std::string& why)>;

// Runs `task` (an awaitable, or a callable returning one) on `ex` without awaiting it. An
// exception that escapes it is logged with `what` and handed to `on_escape`: never lost.
template <class Executor, class Task>
void spawn_detached(const Executor& ex, Task&& task, std::string what, OnEscape on_escape = {}) {
  boost::asio::co_spawn(
      ex, std::forward<Task>(task),
      [what = std::move(what), on_escape = std::move(on_escape)](const std::exception_ptr& e, auto&&...) {
        if (!e) return;
        const std::string why = describe(e);
        log_escaped(what, why);
        if (on_escape) on_escape(why);
      });
}

}  // namespace spool
