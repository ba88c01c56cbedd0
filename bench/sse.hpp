// Incremental HTTP/1.1 response framing and Server-Sent Events parsing for the load client.
//
// Nothing here does I/O: bytes are pushed in as they arrive from the socket, in pieces of any
// size (one byte at a time works), and complete events come out through a callback. The SSE
// parser follows the WHATWG "event stream interpretation" rules: lines end in CRLF, LF or CR;
// a leading UTF-8 BOM is dropped; lines starting with ':' are comments; `field: value` with
// one optional space after the colon; `data` lines are joined with '\n'; an empty line
// dispatches the event (nothing is dispatched when no data line was seen); `id` persists as
// the last event id; `retry` takes only ASCII digits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace bench {

struct SseEvent {
  std::string_view type;  // "message" when the event had no `event:` line
  std::string_view data;  // data lines joined with '\n', without the final '\n'
  std::string_view id;    // the last event id in force when the event was dispatched
};

class SseParser {
 public:
  // Lines longer than this (a server that never sends a newline) make the parser fail.
  static constexpr std::size_t kMaxLine = 16u << 20;

  // Pushes n bytes; calls on_event(const SseEvent&) once per complete event, in order.
  // Returns false once the stream is unusable (an over-long line); further input is ignored.
  template <class F>
  bool feed(const char* p, std::size_t n, F&& on_event) {
    if (failed_) return false;
    const char* end = p + n;
    if (skip_lf_ && p < end) {
      // The previous piece ended with CR; an LF right after it belongs to the same line end.
      if (*p == '\n') ++p;
      skip_lf_ = false;
    }
    const char* nl = nullptr;  // cached position of the next LF at or after p (or end)
    while (p < end) {
      if (nl < p) {
        nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        if (!nl) nl = end;
      }
      const char* cr = static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(nl - p)));
      const char* eol = cr ? cr : nl;
      if (eol == end) {  // no line end in this piece: keep the fragment for the next one
        if (partial_.size() + static_cast<std::size_t>(end - p) > kMaxLine) {
          failed_ = true;
          return false;
        }
        partial_.append(p, static_cast<std::size_t>(end - p));
        return true;
      }
      if (partial_.empty()) {
        line(std::string_view(p, static_cast<std::size_t>(eol - p)), on_event);
      } else {
        partial_.append(p, static_cast<std::size_t>(eol - p));
        line(std::string_view(partial_), on_event);
        partial_.clear();
      }
      p = eol + 1;
      if (*eol == '\r') {
        if (p == end) {
          skip_lf_ = true;
          return true;
        }
        if (*p == '\n') ++p;
      }
    }
    return true;
  }

  bool failed() const { return failed_; }
  std::string_view last_event_id() const { return id_; }
  long retry_ms() const { return retry_ms_; }
  // True when bytes of an unfinished event (or line) are buffered: a stream that ends here
  // was cut in the middle of an event.
  bool mid_event() const { return !partial_.empty() || !data_.empty() || !type_.empty(); }

 private:
  template <class F>
  void line(std::string_view l, F& on_event) {
    if (first_line_) {
      first_line_ = false;
      if (l.size() >= 3 && std::memcmp(l.data(), "\xEF\xBB\xBF", 3) == 0) l.remove_prefix(3);
    }
    if (l.empty()) {
      if (data_.empty()) {  // no data line: nothing to dispatch
        type_.clear();
        return;
      }
      std::string_view data(data_.data(), data_.size() - 1);  // drop the final '\n'
      std::string_view type = type_.empty() ? std::string_view("message") : std::string_view(type_);
      on_event(SseEvent{type, data, std::string_view(id_)});
      data_.clear();
      type_.clear();
      return;
    }
    if (l.front() == ':') return;  // comment (keep-alives)
    std::string_view field = l, value;
    if (auto colon = l.find(':'); colon != std::string_view::npos) {
      field = l.substr(0, colon);
      value = l.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      data_.append(value.data(), value.size());
      data_.push_back('\n');
    } else if (field == "event") {
      type_.assign(value.data(), value.size());
    } else if (field == "id") {
      if (value.find('\0') == std::string_view::npos) id_.assign(value.data(), value.size());
    } else if (field == "retry") {
      if (value.empty()) return;
      long v = 0;
      for (char ch : value) {
        if (ch < '0' || ch > '9') return;
        if (v < 1000000000L) v = v * 10 + (ch - '0');
      }
      retry_ms_ = v;
    }
    // Any other field is ignored, as the standard says.
  }

  std::string partial_;  // an incomplete line carried over to the next piece
  std::string type_, data_, id_;
  long retry_ms_ = -1;
  bool skip_lf_ = false;
  bool first_line_ = true;
  bool failed_ = false;
};

// Decodes a `Transfer-Encoding: chunked` body incrementally. Chunk extensions and trailers are
// skipped; a bare LF is accepted where CRLF is expected.
class ChunkedDecoder {
 public:
  // Calls out(const char*, size_t) for each piece of body data. Returns the number of input
  // bytes consumed (it stops right after the final chunk's trailers, so whatever follows
  // belongs to the next response), or -1 on a framing error.
  template <class F>
  long feed(const char* p, std::size_t n, F&& out) {
    const char* const begin = p;
    const char* const end = p + n;
    while (p < end) {
      switch (st_) {
        case St::Size: {
          char ch = *p++;
          int d = hex(ch);
          if (d >= 0) {
            if (remaining_ > (UINT64_MAX >> 4)) return fail();
            remaining_ = remaining_ * 16 + static_cast<unsigned>(d);
            digits_ = true;
          } else if (ch == ';' || ch == ' ' || ch == '\t') {
            st_ = St::Ext;
          } else if (ch == '\r') {
            st_ = St::SizeLf;
          } else if (ch == '\n') {
            if (!size_line_done()) return -1;
          } else {
            return fail();
          }
          break;
        }
        case St::Ext: {
          char ch = *p++;
          if (ch == '\r')
            st_ = St::SizeLf;
          else if (ch == '\n' && !size_line_done())
            return -1;
          break;
        }
        case St::SizeLf:
          if (*p++ != '\n') return fail();
          if (!size_line_done()) return -1;
          break;
        case St::Data: {
          std::size_t take = static_cast<std::size_t>(end - p);
          if (take > remaining_) take = static_cast<std::size_t>(remaining_);
          out(p, take);
          p += take;
          remaining_ -= take;
          if (remaining_ == 0) st_ = St::DataCr;
          break;
        }
        case St::DataCr: {
          char ch = *p++;
          if (ch == '\r')
            st_ = St::DataLf;
          else if (ch == '\n')
            reset_size();
          else
            return fail();
          break;
        }
        case St::DataLf:
          if (*p++ != '\n') return fail();
          reset_size();
          break;
        case St::Trailer: {
          char ch = *p++;
          if (ch == '\n') {
            if (trailer_len_ == 0) {
              st_ = St::Done;
              return static_cast<long>(p - begin);
            }
            trailer_len_ = 0;
          } else if (ch != '\r') {
            ++trailer_len_;
          }
          break;
        }
        case St::Done:
          return static_cast<long>(p - begin);
        case St::Failed:
          return -1;
      }
    }
    return static_cast<long>(p - begin);
  }
  bool done() const { return st_ == St::Done; }
  bool failed() const { return st_ == St::Failed; }

 private:
  enum class St { Size, Ext, SizeLf, Data, DataCr, DataLf, Trailer, Done, Failed };
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  long fail() {
    st_ = St::Failed;
    return -1;
  }
  bool size_line_done() {
    if (!digits_) {
      st_ = St::Failed;
      return false;
    }
    if (remaining_ == 0) {
      st_ = St::Trailer;
      trailer_len_ = 0;
    } else {
      st_ = St::Data;
    }
    return true;
  }
  void reset_size() {
    st_ = St::Size;
    remaining_ = 0;
    digits_ = false;
  }
  St st_ = St::Size;
  std::uint64_t remaining_ = 0;
  bool digits_ = false;
  std::size_t trailer_len_ = 0;
};

struct ResponseHead {
  int status = 0;
  int minor_version = 1;
  bool chunked = false;
  bool has_length = false;
  std::uint64_t content_length = 0;
  bool close = false;  // the server will close the connection after this response
  std::string content_type;
};

// Parses a response head at the start of buf. Returns the number of bytes it spans
// (through the blank line), 0 when more bytes are needed, -1 when it is malformed.
long parse_response_head(std::string_view buf, ResponseHead& out);

// How a response body is delimited, and an incremental reader for it.
class BodyReader {
 public:
  // `head_request` or a 1xx/204/304 status: no body.
  void start(const ResponseHead& h, bool head_request = false);
  // Calls out(const char*, size_t) with body bytes; returns the number of input bytes that
  // belong to this response (the rest is the next response on a keep-alive connection), or
  // -1 on a framing error.
  template <class F>
  long feed(const char* p, std::size_t n, F&& out) {
    switch (mode_) {
      case Mode::None:
        return 0;
      case Mode::Length: {
        std::size_t take = n;
        if (take > remaining_) take = static_cast<std::size_t>(remaining_);
        if (take) out(p, take);
        remaining_ -= take;
        return static_cast<long>(take);
      }
      case Mode::UntilClose:
        if (n) out(p, n);
        return static_cast<long>(n);
      case Mode::Chunked:
        return chunked_.feed(p, n, out);
    }
    return -1;
  }
  bool done() const {
    switch (mode_) {
      case Mode::None:
        return true;
      case Mode::Length:
        return remaining_ == 0;
      case Mode::UntilClose:
        return false;
      case Mode::Chunked:
        return chunked_.done();
    }
    return true;
  }
  bool until_close() const { return mode_ == Mode::UntilClose; }

 private:
  enum class Mode { None, Length, UntilClose, Chunked };
  Mode mode_ = Mode::None;
  std::uint64_t remaining_ = 0;
  ChunkedDecoder chunked_;
};

// Runs the parser and decoder checks; returns the number of failures and prints each one to
// stderr. `passed` receives the number of checks that held.
int selftest(int& passed);

}  // namespace bench
