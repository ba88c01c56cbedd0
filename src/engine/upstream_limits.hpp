// Bounds on what an upstream model server may send (§7): a reply past one fails its job clearly.
// The defaults here are the configuration's defaults (upstream_max_event_bytes, upstream_max_delta_bytes).
#pragma once

#include <cstddef>

namespace spool {

// How much of an upstream's reply is held at once.
struct UpstreamLimits {
  // Longest SSE line, and longest event (its data lines joined). 16 MiB, the default request body
  // limit: far above any real chunk (a few KiB; a whole reply or an image in one chunk still fits)
  // while one job's buffered line and its parsed JSON stay within tens of MiB.
  std::size_t max_event_bytes = std::size_t{16} * 1024 * 1024;
  // Longest single text, thinking or tool-argument delta: a real one is a token or a sentence, a
  // server that does not stream sends a whole reply (max_tokens × a few bytes) in one. Each delta is
  // one stored event.
  std::size_t max_delta_bytes = std::size_t{1} * 1024 * 1024;
};

}  // namespace spool
