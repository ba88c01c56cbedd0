#include "store/log_format.hpp"

#include "store/crc32c.hpp"

#include <cstring>

namespace spool::logfmt {
namespace {

// Starts a record in `out`; returns where it starts, for finish().
std::size_t begin(std::string& out, RecordType type) {
  const std::size_t at = out.size();
  out.append(8, '\0');  // checksum and length, filled in by finish()
  out.push_back(static_cast<char>(type));
  return at;
}

void finish(std::string& out, std::size_t at) {
  const auto length = static_cast<std::uint32_t>(out.size() - at - 8);
  std::string len;
  put_u32(len, length);
  std::memcpy(out.data() + at + 4, len.data(), 4);
  const std::uint32_t crc = crc32c(std::string_view(out).substr(at + 4));
  std::string c;
  put_u32(c, crc);
  std::memcpy(out.data() + at, c.data(), 4);
}

constexpr std::uint8_t kStatusCount = 5;

}  // namespace

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint32_t get_u32(std::string_view in) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_signed(std::string& out, std::int64_t v) {
  put_varint(out, (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
}

void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

bool Reader::varint(std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in_.empty()) return false;
    const auto b = static_cast<unsigned char>(in_.front());
    in_.remove_prefix(1);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}
bool Reader::signed_varint(std::int64_t& v) {
  std::uint64_t z = 0;
  if (!varint(z)) return false;
  v = static_cast<std::int64_t>(z >> 1) ^ -static_cast<std::int64_t>(z & 1);
  return true;
}
bool Reader::byte(std::uint8_t& b) {
  if (in_.empty()) return false;
  b = static_cast<std::uint8_t>(in_.front());
  in_.remove_prefix(1);
  return true;
}
bool Reader::string(std::string& s) {
  std::uint64_t n = 0;
  if (!varint(n) || n > in_.size()) return false;
  s.assign(in_.substr(0, n));
  in_.remove_prefix(n);
  return true;
}

std::string segment_header(std::uint32_t number) {
  std::string h(kMagic);
  put_u32(h, kVersion);
  put_u32(h, number);
  return h;
}

std::optional<std::uint32_t> parse_segment_header(std::string_view header) {
  if (header.size() < kHeaderBytes || header.substr(0, kMagic.size()) != kMagic) return std::nullopt;
  if (get_u32(header.substr(8)) != kVersion) return std::nullopt;
  return get_u32(header.substr(12));
}

void append(std::string& out, const Create& r) {
  const std::size_t at = begin(out, RecordType::create);
  put_varint(out, r.serial);
  put_string(out, r.id);
  put_string(out, r.model);
  put_string(out, r.owner);
  put_signed(out, r.message_count);
  out.push_back(r.thinking ? '\1' : '\0');
  put_signed(out, r.created_us);
  if (r.incarnation > 1) put_varint(out, r.incarnation);
  finish(out, at);
}

void append(std::string& out, const Events& r) {
  const std::string_view frames[] = {r.frames};
  append_events(out, r.serial, r.first, r.count, frames, r.usage);
}

void append_events(std::string& out, std::uint64_t serial, std::uint64_t first, std::uint64_t count,
                   std::span<const std::string_view> parts, const std::optional<Usage>& usage) {
  const std::size_t at = begin(out, usage ? RecordType::progress : RecordType::events);
  put_varint(out, serial);
  put_varint(out, first);
  put_varint(out, count);
  if (usage) {
    put_signed(out, usage->input_tokens);
    put_signed(out, usage->output_tokens);
  }
  for (const std::string_view part : parts) out.append(part);
  finish(out, at);
}

std::size_t events_record_bound(std::size_t frames) { return kRecordHeaderBytes + std::size_t{5} * 10 + frames; }

void append(std::string& out, const Update& r) {
  const std::size_t at = begin(out, RecordType::update);
  put_varint(out, r.serial);
  out.push_back(static_cast<char>(r.status));
  put_signed(out, r.updated_us);
  out.push_back(r.completed_us ? '\1' : '\0');
  if (r.completed_us) put_signed(out, *r.completed_us);
  out.push_back(r.error_message ? '\1' : '\0');
  if (r.error_message) put_string(out, *r.error_message);
  put_signed(out, r.input_tokens);
  put_signed(out, r.output_tokens);
  finish(out, at);
}

void append(std::string& out, const Key& r) {
  const std::size_t at = begin(out, RecordType::key);
  put_varint(out, r.serial);
  put_string(out, r.key);
  put_string(out, r.digest);
  finish(out, at);
}

void append(std::string& out, const Remove& r) {
  const std::size_t at = begin(out, RecordType::remove);
  put_varint(out, r.serial);
  if (r.incarnation > 0) {
    put_varint(out, r.incarnation);
    put_signed(out, r.removed_us);
  }
  finish(out, at);
}

void append(std::string& out, const Table& r) {
  const std::size_t at = begin(out, RecordType::table);
  put_varint(out, r.serial);
  put_varint(out, r.extents.size());
  for (const auto& e : r.extents) {
    put_varint(out, e.segment);
    put_varint(out, e.offset);
    put_varint(out, e.size);
    put_varint(out, e.first);
    put_varint(out, e.count);
  }
  finish(out, at);
}

Decoded decode(std::string_view in, Record& out) {
  if (in.size() < kRecordHeaderBytes) return Decoded::truncated;
  const std::uint32_t length = get_u32(in.substr(4));
  if (length == 0 || length > kMaxRecordBytes) return Decoded::corrupt;
  const std::size_t size = 8 + std::size_t{length};
  if (in.size() < size) return Decoded::truncated;
  if (crc32c(in.substr(4, size - 4)) != get_u32(in)) return Decoded::corrupt;
  const auto type = static_cast<std::uint8_t>(in[8]);
  if (type < 1 || type > static_cast<std::uint8_t>(RecordType::progress)) return Decoded::corrupt;
  out.type = static_cast<RecordType>(type);
  out.body = in.substr(kRecordHeaderBytes, size - kRecordHeaderBytes);
  out.size = size;
  return Decoded::ok;
}

bool parse(std::string_view body, Create& r) {
  Reader in(body);
  std::uint8_t thinking = 0;
  if (!in.varint(r.serial) || !in.string(r.id) || !in.string(r.model) || !in.string(r.owner) ||
      !in.signed_varint(r.message_count) || !in.byte(thinking) || !in.signed_varint(r.created_us)) {
    return false;
  }
  r.thinking = thinking != 0;
  r.incarnation = 1;
  if (in.done()) return true;
  std::uint64_t incarnation = 0;
  if (!in.varint(incarnation) || incarnation < 1 || incarnation > UINT32_MAX) return false;
  r.incarnation = static_cast<std::uint32_t>(incarnation);
  return in.done();
}

bool parse(std::string_view body, Events& r) {
  Reader in(body);
  if (!in.varint(r.serial) || !in.varint(r.first) || !in.varint(r.count)) return false;
  r.frames = in.rest();
  return r.count > 0 && r.first > 0 && !r.frames.empty();
}

bool parse_progress(std::string_view body, Events& r) {
  Reader in(body);
  Usage u;
  if (!in.varint(r.serial) || !in.varint(r.first) || !in.varint(r.count) || !in.signed_varint(u.input_tokens) ||
      !in.signed_varint(u.output_tokens)) {
    return false;
  }
  r.usage = u;
  r.frames = in.rest();
  return r.count > 0 && r.first > 0 && !r.frames.empty();
}

bool parse_events(const Record& r, Events& out) {
  if (r.type == RecordType::events) return parse(r.body, out);
  return r.type == RecordType::progress && parse_progress(r.body, out);
}

bool parse(std::string_view body, Update& r) {
  Reader in(body);
  std::uint8_t status = 0;
  std::uint8_t has = 0;
  if (!in.varint(r.serial) || !in.byte(status) || status >= kStatusCount || !in.signed_varint(r.updated_us)) {
    return false;
  }
  r.status = static_cast<StreamStatus>(status);
  if (!in.byte(has)) return false;
  r.completed_us.reset();
  if (has != 0) {
    std::int64_t t = 0;
    if (!in.signed_varint(t)) return false;
    r.completed_us = t;
  }
  if (!in.byte(has)) return false;
  r.error_message.reset();
  if (has != 0) {
    std::string e;
    if (!in.string(e)) return false;
    r.error_message = std::move(e);
  }
  return in.signed_varint(r.input_tokens) && in.signed_varint(r.output_tokens) && in.done();
}

bool parse(std::string_view body, Key& r) {
  Reader in(body);
  return in.varint(r.serial) && in.string(r.key) && in.string(r.digest) && in.done();
}

bool parse(std::string_view body, Remove& r) {
  Reader in(body);
  r.incarnation = 0;
  r.removed_us = 0;
  if (!in.varint(r.serial)) return false;
  if (in.done()) return true;
  std::uint64_t incarnation = 0;
  if (!in.varint(incarnation) || incarnation < 1 || incarnation > UINT32_MAX || !in.signed_varint(r.removed_us)) {
    return false;
  }
  r.incarnation = static_cast<std::uint32_t>(incarnation);
  return in.done();
}

bool parse(std::string_view body, Table& r) {
  Reader in(body);
  std::uint64_t n = 0;
  if (!in.varint(r.serial) || !in.varint(n)) return false;
  // Each extent takes five bytes at least: a count past that is damage, never an allocation.
  if (n > body.size() / 5) return false;
  r.extents.clear();
  r.extents.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t segment = 0;
    std::uint64_t size = 0;
    Extent e;
    if (!in.varint(segment) || !in.varint(e.offset) || !in.varint(size) || !in.varint(e.first) || !in.varint(e.count) ||
        segment > UINT32_MAX || size > kMaxRecordBytes) {
      return false;
    }
    e.segment = static_cast<std::uint32_t>(segment);
    e.size = static_cast<std::uint32_t>(size);
    r.extents.push_back(e);
  }
  return in.done();
}

bool parse_serial(std::string_view body, std::uint64_t& serial) { return Reader(body).varint(serial); }

std::optional<std::size_t> skip_frames(std::string_view frames, std::uint64_t n) {
  std::size_t at = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::size_t end = frames.find("\n\n", at);
    if (end == std::string_view::npos) return std::nullopt;
    at = end + 2;
  }
  return at;
}

}  // namespace spool::logfmt
