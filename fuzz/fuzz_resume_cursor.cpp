// Resuming an SSE stream: a log built from the input, a Last-Event-ID from the input, and the
// cursor's reads from there (gather up to a limit, in chunks of a size from the input). What is
// read must be exactly the frames after the position, in order, whatever the values.
#include "api/request_target.hpp"
#include "stream/event_log.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  // header: 1 byte chunk limit, 1 byte "upto" slack, 1 byte id length, then the id text
  const std::size_t chunk = 1 + data[0] * 64;
  const std::size_t slack = data[1] % 4;
  const std::size_t id_len = std::min<std::size_t>(data[2], size - 3);
  const std::string_view id_text(reinterpret_cast<const char*>(data + 3), id_len);
  std::string_view rest(reinterpret_cast<const char*>(data + 3 + id_len), size - 3 - id_len);

  // events: the rest split at '\n' (type = the first byte, JSON = the remainder)
  spool::EventLog log;
  while (!rest.empty() && log.size() < 2000) {
    const auto nl = rest.find('\n');
    const std::string_view ev = rest.substr(0, nl);
    log.append(ev.empty() ? std::string_view("e") : ev.substr(0, 1), ev.empty() ? ev : ev.substr(1));
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  }
  const auto id = spool::parse_event_id(id_text);
  if (!id) return 0;
  const std::uint64_t* after = &id->position;
  const std::uint64_t upto = log.size() > slack ? log.size() - slack : 0;
  std::string want;
  for (std::uint64_t i = *after + 1; i <= upto; ++i) want += log.frame(i);
  std::string got;
  std::uint64_t pos = *after;
  while (pos < upto) {
    std::vector<boost::asio::const_buffer> bufs;
    const std::uint64_t next = log.gather(pos, upto, chunk, bufs);
    if (next <= pos || next > upto) std::abort();
    for (const auto& b : bufs) got.append(static_cast<const char*>(b.data()), b.size());
    pos = next;
  }
  if (got != want) std::abort();
  return 0;
}
