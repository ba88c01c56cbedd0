#include "store/log_format.hpp"

#include "store/crc32c.hpp"

#include <gtest/gtest.h>

namespace spool::logfmt {
namespace {

using namespace std::string_literals;

TEST(Crc32c, KnownAnswers) {
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the check value of CRC-32C
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);  // RFC 3720, B.4
  // continuing a checksum is the checksum of the whole
  EXPECT_EQ(crc32c("56789", crc32c("1234")), crc32c("123456789"));
}

TEST(LogFormat, SegmentHeaderRoundTripsAndRefusesOtherFiles) {
  const std::string h = segment_header(42);
  ASSERT_EQ(h.size(), kHeaderBytes);
  EXPECT_EQ(parse_segment_header(h), 42u);
  EXPECT_FALSE(parse_segment_header("SQLite format 3\0"));
  EXPECT_FALSE(parse_segment_header(h.substr(0, 10)));
  std::string other_version = h;
  other_version[8] = 2;
  EXPECT_FALSE(parse_segment_header(other_version));
}

// Decodes the one record in `bytes`, checking its type and that it takes all of them.
Record only_record(const std::string& bytes, RecordType type) {
  Record r;
  EXPECT_EQ(decode(bytes, r), Decoded::ok);
  EXPECT_EQ(r.type, type);
  EXPECT_EQ(r.size, bytes.size());
  return r;
}

TEST(LogFormat, EveryRecordRoundTrips) {
  std::string out;
  Create c{.serial = 7,
           .id = "msg_01",
           .model = "m",
           .owner = "o",
           .message_count = 3,
           .thinking = true,
           .created_us = 1'700'000'000'000'000};
  append(out, c);
  Create c2;
  ASSERT_TRUE(parse(only_record(out, RecordType::create).body, c2));
  EXPECT_EQ(c2.serial, 7u);
  EXPECT_EQ(c2.id, "msg_01");
  EXPECT_EQ(c2.owner, "o");
  EXPECT_EQ(c2.message_count, 3);
  EXPECT_TRUE(c2.thinking);
  EXPECT_EQ(c2.created_us, c.created_us);

  out.clear();
  const std::string frames = "event: a\ndata: {}\nid: 5\n\nevent: b\ndata: {}\nid: 6\n\n";
  append(out, Events{.serial = 7, .first = 5, .count = 2, .frames = frames, .usage = std::nullopt});
  EXPECT_LE(out.size(), events_record_bound(frames.size()));
  Events e;
  ASSERT_TRUE(parse(only_record(out, RecordType::events).body, e));
  EXPECT_EQ(e.first, 5u);
  EXPECT_EQ(e.count, 2u);
  EXPECT_EQ(e.frames, frames);
  EXPECT_FALSE(e.usage);

  out.clear();  // the same events with the usage they bring: a progress record
  append(out, Events{.serial = 7, .first = 5, .count = 2, .frames = frames, .usage = Usage{12, 300}});
  EXPECT_LE(out.size(), events_record_bound(frames.size()));
  Events p;
  ASSERT_TRUE(parse_events(only_record(out, RecordType::progress), p));
  EXPECT_EQ(p.serial, 7u);
  EXPECT_EQ(p.first, 5u);
  EXPECT_EQ(p.count, 2u);
  EXPECT_EQ(p.frames, frames);
  ASSERT_TRUE(p.usage);
  EXPECT_EQ(p.usage->input_tokens, 12);
  EXPECT_EQ(p.usage->output_tokens, 300);

  out.clear();
  Update u{.serial = 7,
           .status = StreamStatus::error,
           .updated_us = -5,
           .completed_us = 99,
           .error_message = "boom",
           .input_tokens = 10,
           .output_tokens = 20};
  append(out, u);
  Update u2;
  ASSERT_TRUE(parse(only_record(out, RecordType::update).body, u2));
  EXPECT_EQ(u2.status, StreamStatus::error);
  EXPECT_EQ(u2.updated_us, -5);
  EXPECT_EQ(u2.completed_us, 99);
  EXPECT_EQ(u2.error_message, "boom");
  EXPECT_EQ(u2.output_tokens, 20);

  out.clear();
  append(out, Key{.serial = 7, .key = "k", .digest = "d"});
  Key k;
  ASSERT_TRUE(parse(only_record(out, RecordType::key).body, k));
  EXPECT_EQ(k.key, "k");
  EXPECT_EQ(k.digest, "d");

  out.clear();
  append(out, Remove{.serial = 7});
  Remove rm;
  ASSERT_TRUE(parse(only_record(out, RecordType::remove).body, rm));
  EXPECT_EQ(rm.serial, 7u);

  out.clear();
  Table t{.serial = 7, .extents = {{1, 16, 100, 1, 3}, {2, 4096, 70, 4, 1}}};
  append(out, t);
  Table t2;
  ASSERT_TRUE(parse(only_record(out, RecordType::table).body, t2));
  ASSERT_EQ(t2.extents.size(), 2u);
  EXPECT_EQ(t2.extents[1].segment, 2u);
  EXPECT_EQ(t2.extents[1].offset, 4096u);
  EXPECT_EQ(t2.extents[1].first, 4u);
}

TEST(LogFormat, IncarnationsAndTombstonesAreTrailingFieldsOlderRecordsLack) {
  Create c{.serial = 3, .id = "x", .model = "m", .owner = "", .message_count = 1, .created_us = 5};
  std::string first;
  append(first, c);  // the first incarnation: the record an older Spool wrote, byte for byte
  Create got;
  ASSERT_TRUE(parse(only_record(first, RecordType::create).body, got));
  EXPECT_EQ(got.incarnation, 1u);
  c.incarnation = 4;
  std::string later;
  append(later, c);
  EXPECT_EQ(later.size(), first.size() + 1);
  ASSERT_TRUE(parse(only_record(later, RecordType::create).body, got));
  EXPECT_EQ(got.incarnation, 4u);
  EXPECT_EQ(got.created_us, 5);

  std::string bare;
  append(bare, Remove{.serial = 3});  // as older records are: no tombstone
  Remove rm{.serial = 0, .incarnation = 9, .removed_us = 9};
  ASSERT_TRUE(parse(only_record(bare, RecordType::remove).body, rm));
  EXPECT_EQ(rm.serial, 3u);
  EXPECT_EQ(rm.incarnation, 0u);
  std::string tomb;
  append(tomb, Remove{.serial = 3, .incarnation = 2, .removed_us = 1'700'000'000'000'000});
  ASSERT_TRUE(parse(only_record(tomb, RecordType::remove).body, rm));
  EXPECT_EQ(rm.serial, 3u);
  EXPECT_EQ(rm.incarnation, 2u);
  EXPECT_EQ(rm.removed_us, 1'700'000'000'000'000);

  // An incarnation of 0 or one past 32 bits is damage.
  std::string body;
  put_varint(body, 3);
  put_varint(body, 0);
  put_signed(body, 1);
  EXPECT_FALSE(parse(body, rm));
  body.clear();
  put_varint(body, 3);
  put_varint(body, std::uint64_t{1} << 32);
  put_signed(body, 1);
  EXPECT_FALSE(parse(body, rm));
}

TEST(LogFormat, ATornTailAtEveryByteIsTruncatedNeverWrong) {
  std::string log;
  append(log, Create{.serial = 1, .id = "a", .model = "m", .owner = ""});
  const std::size_t first = log.size();
  append(log, Events{.serial = 1, .first = 1, .count = 1, .frames = "event: x\ndata: {}\nid: 1\n\n", .usage = {}});
  for (std::size_t cut = first; cut < log.size(); ++cut) {
    Record r;
    ASSERT_EQ(decode(std::string_view(log).substr(0, first), r), Decoded::ok);
    EXPECT_EQ(decode(std::string_view(log).substr(first, cut - first), r), Decoded::truncated) << "cut at " << cut;
  }
}

TEST(LogFormat, AnyBitFlippedIsCaught) {
  std::string rec;
  append(rec,
         Events{.serial = 3, .first = 9, .count = 1, .frames = "event: x\ndata: {\"a\":1}\nid: 9\n\n", .usage = {}});
  for (std::size_t byte = 0; byte < rec.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = rec;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      Record r;
      // a flipped length may also reach past the end: then it reads as a torn tail
      EXPECT_NE(decode(bad, r), Decoded::ok) << "byte " << byte << " bit " << bit;
    }
  }
}

TEST(LogFormat, ASegmentEndingMidHeaderIsTruncated) {
  std::string rec;
  append(rec, Remove{.serial = 1});
  for (std::size_t n = 0; n < kRecordHeaderBytes; ++n) {
    Record r;
    EXPECT_EQ(decode(rec.substr(0, n), r), Decoded::truncated);
  }
}

TEST(LogFormat, MalformedBodiesAndLengthsAreRefusedWithoutAllocating) {
  // a length past the limit is damage, not a request to read 4 GiB
  std::string huge = "\0\0\0\0\xff\xff\xff\xff\x02"s;
  Record r;
  EXPECT_EQ(decode(huge, r), Decoded::corrupt);
  Table t;
  std::string body;
  body.push_back('\x01');                                // serial
  body.append("\xff\xff\xff\xff\xff\xff\xff\xff\x7f"s);  // 2^63 extents claimed
  EXPECT_FALSE(parse(body, t));
  Create c;
  EXPECT_FALSE(parse("\x01\x7f"s, c));  // a string longer than the body
  Update u;
  std::string status_out_of_range = "\x01\x09\x00"s;
  EXPECT_FALSE(parse(status_out_of_range, u));
  Events e;
  EXPECT_FALSE(parse("\x01\x00\x01x"s, e));  // position 0 does not exist
}

TEST(LogFormat, SkipFramesCountsWholeFrames) {
  const std::string frames = "event: a\ndata: {}\nid: 1\n\nevent: b\ndata: {}\nid: 2\n\n";
  EXPECT_EQ(skip_frames(frames, 0), 0u);
  EXPECT_EQ(skip_frames(frames, 1), frames.find("event: b"));
  EXPECT_EQ(skip_frames(frames, 2), frames.size());
  EXPECT_FALSE(skip_frames(frames, 3));
}

}  // namespace
}  // namespace spool::logfmt
