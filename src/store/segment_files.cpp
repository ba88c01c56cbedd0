#include "store/segment_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

namespace spool {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSuffix = ".seg";
constexpr std::size_t kNameDigits = 10;
constexpr std::size_t kScanChunk = std::size_t{4} << 20;

Error store_error(const std::string& what) { return make_error(Errc::internal, what); }

std::string errno_text() { return std::strerror(errno); }

}  // namespace

SegmentFile::~SegmentFile() { ::close(fd_); }

Status SegmentFile::read(std::uint64_t offset, std::size_t n, std::string& out) const {
  out.resize(n);
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd_, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      return store_error(path_ + ": cannot read " + std::to_string(n) + " bytes at " + std::to_string(offset) + ": " +
                         (r == 0 ? std::string("the file is shorter") : errno_text()));
    }
    got += static_cast<std::size_t>(r);
  }
  return Ok{};
}

std::uint64_t SegmentFile::size() const {
  struct stat st {};
  return ::fstat(fd_, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

ActiveSegment::~ActiveSegment() { ::close(fd_); }

Result<std::unique_ptr<ActiveSegment>> ActiveSegment::create(std::uint32_t number, std::string path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return store_error("cannot create " + path + ": " + errno_text());
  std::unique_ptr<ActiveSegment> s(new ActiveSegment(number, fd, std::move(path), 0));
  if (auto st = s->append(logfmt::segment_header(number)); !st) return st.error();
  return s;
}

Result<std::unique_ptr<ActiveSegment>> ActiveSegment::reopen(std::uint32_t number, std::string path,
                                                             std::uint64_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return store_error("cannot open " + path + " for writing: " + errno_text());
  std::unique_ptr<ActiveSegment> s(new ActiveSegment(number, fd, std::move(path), size));
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0)
    return store_error("cannot truncate " + s->path_ + ": " + errno_text());
  return s;
}

Status ActiveSegment::append(std::string_view bytes) {
  std::size_t put = 0;
  while (put < bytes.size()) {
    const ssize_t w = ::pwrite(fd_, bytes.data() + put, bytes.size() - put, static_cast<off_t>(size_ + put));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string why = errno_text();
      (void)::ftruncate(fd_, static_cast<off_t>(size_));  // no partial record stays behind
      return store_error("cannot write to " + path_ + ": " + why);
    }
    put += static_cast<std::size_t>(w);
  }
  size_ += bytes.size();
  return Ok{};
}

Status ActiveSegment::sync() {
  if (::fdatasync(fd_) != 0) return store_error("cannot sync " + path_ + ": " + errno_text());
  return Ok{};
}

std::string segment_path(const std::string& dir, std::uint32_t number) {
  std::string digits = std::to_string(number);
  digits.insert(0, kNameDigits - std::min(kNameDigits, digits.size()), '0');
  return (fs::path(dir) / (digits + std::string(kSuffix))).string();
}

Result<std::vector<std::uint32_t>> list_segments(const std::string& dir) {
  std::vector<std::uint32_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    std::uint32_t n = 0;
    const bool numbered = name.size() == kNameDigits + kSuffix.size() && name.ends_with(kSuffix) &&
                          std::from_chars(name.data(), name.data() + kNameDigits, n).ptr == name.data() + kNameDigits;
    if (!numbered)
      return store_error(entry.path().string() + " is not a Spool segment (remove it or use another data_dir)");
    out.push_back(n);
  }
  if (ec) return store_error("cannot list " + dir + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::shared_ptr<SegmentFile>> open_segment(const std::string& dir, std::uint32_t number) {
  std::string path = segment_path(dir, number);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return store_error("cannot open " + path + ": " + errno_text());
  auto file = std::make_shared<SegmentFile>(number, fd, path);
  std::string header;
  if (auto st = file->read(0, logfmt::kHeaderBytes, header); !st) {
    return store_error(path + " is not a Spool segment (too short for its header)");
  }
  const auto n = logfmt::parse_segment_header(header);
  if (!n) return store_error(path + " is not a Spool segment of this version");
  if (*n != number) return store_error(path + " says it is segment " + std::to_string(*n));
  return file;
}

Result<ScanEnd> scan_segment(const std::string& dir, std::uint32_t number, std::uint64_t from, bool last,
                             const std::function<void(const logfmt::Record&, std::uint64_t)>& on) {
  auto file = open_segment(dir, number);
  if (!file) return file.error();
  const std::string& path = (*file)->path();
  std::error_code ec;
  const std::uint64_t file_size = fs::file_size(path, ec);
  if (ec) return store_error("cannot read the size of " + path + ": " + ec.message());
  std::uint64_t at = std::max<std::uint64_t>(from, logfmt::kHeaderBytes);
  std::string buf;
  std::size_t used = 0;  // bytes of buf consumed
  std::uint64_t buf_at = at;
  while (at < file_size) {
    if (used > 0) {
      buf.erase(0, used);
      buf_at += used;
      used = 0;
    }
    const std::uint64_t want = std::min<std::uint64_t>(kScanChunk, file_size - (buf_at + buf.size()));
    if (want > 0) {
      std::string more;
      if (auto st = (*file)->read(buf_at + buf.size(), static_cast<std::size_t>(want), more); !st) return st.error();
      buf += more;
    }
    std::string_view rest(buf);
    bool progressed = false;
    for (;;) {
      logfmt::Record r;
      const auto d = logfmt::decode(rest.substr(used), r);
      if (d == logfmt::Decoded::ok) {
        on(r, at);
        at += r.size;
        used += r.size;
        progressed = true;
        continue;
      }
      const bool at_file_end = buf_at + buf.size() >= file_size;
      if (d == logfmt::Decoded::truncated && !at_file_end) break;  // read more
      if (last) return ScanEnd{at, file_size - at};
      return store_error(
          path + " is damaged at offset " + std::to_string(at) +
          (d == logfmt::Decoded::truncated ? " (a record cut short)" : " (a record fails its checksum)") +
          "; move the data directory aside to start empty, or restore it from a backup");
    }
    if (!progressed && buf.size() >= logfmt::kMaxRecordBytes + logfmt::kRecordHeaderBytes) {
      return store_error(path + " is damaged at offset " + std::to_string(at));
    }
  }
  return ScanEnd{at, 0};
}

}  // namespace spool
