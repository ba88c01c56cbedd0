// The store's readers of untrusted bytes (a damaged or foreign file): the record decoder with
// every body parser, over a whole segment's bytes, and the index checkpoint reader. Nothing may
// crash, read out of bounds or allocate more than the input justifies; a record that decodes must
// re-encode to the same bytes.
#include "store/log_format.hpp"
#include "store/log_index.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace spool::logfmt;

// Parses `r`'s body as its type says and, when it parses, checks the record re-encodes exactly.
void check(const Record& r, std::string_view bytes) {
  std::string again;
  switch (r.type) {
    case RecordType::create: {
      Create c;
      if (parse(r.body, c)) append(again, c);
      break;
    }
    case RecordType::events:
    case RecordType::progress: {
      Events e;
      if (parse_events(r, e)) {
        append(again, e);
        (void)skip_frames(e.frames, e.count);
      }
      break;
    }
    case RecordType::update: {
      Update u;
      if (parse(r.body, u)) append(again, u);
      break;
    }
    case RecordType::key: {
      Key k;
      if (parse(r.body, k)) append(again, k);
      break;
    }
    case RecordType::remove: {
      Remove m;
      if (parse(r.body, m)) append(again, m);
      break;
    }
    case RecordType::table: {
      Table t;
      if (parse(r.body, t)) append(again, t);
      break;
    }
  }
  // varints may be written longer than needed by a foreign writer: only a same-length encoding
  // must match byte for byte
  if (!again.empty() && again.size() == r.size && again != bytes.substr(0, r.size)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view rest = in;
  if (parse_segment_header(in)) rest.remove_prefix(kHeaderBytes);
  spool::LogIndex index;
  std::uint64_t offset = 0;
  for (;;) {
    Record r;
    if (decode(rest, r) != Decoded::ok) break;
    check(r, rest);
    index.apply(r, 1, offset);
    offset += r.size;
    rest.remove_prefix(r.size);
  }
  (void)index.checkpoint(1, offset);
  spool::LogIndex restored;
  (void)restored.restore(in);
  return 0;
}
