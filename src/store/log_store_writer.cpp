#include "store/log_store_impl.hpp"
#include "stream/event_log.hpp"

#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace spool {
namespace {

namespace fs = std::filesystem;
using logfmt::Record;
using logstore::dir_error;
using logstore::Op;

constexpr std::size_t kMaxRunBytes = std::size_t{1} << 20;  // an events record's frames, at most

// Turns a batch of queued writes into records. A stream's consecutive appends become one events
// record followed by the last of its record updates among them (an update states the whole
// record, so the last one is enough); each stream's records keep the order they were queued in.
class BatchEncoder {
 public:
  // `serial_of` finds a stream's serial in the index; `take_serial` gives a new stream its own.
  BatchEncoder(std::string& out, std::vector<std::uint64_t>& finished,
               std::function<std::optional<std::uint64_t>(const std::string&)> serial_of,
               std::function<std::uint64_t()> take_serial)
      : out_(out), finished_(finished), index_serial_(std::move(serial_of)), take_serial_(std::move(take_serial)) {}

  void add(Op& op) {
    if (op.kind == Op::Kind::barrier) return;
    if (op.kind == Op::Kind::create) return create(op);
    const auto serial = serial_of(op.id);
    if (!serial) return;  // its stream is gone
    if (op.kind == Op::Kind::append) return append(*serial, op);
    if (op.kind == Op::Kind::update) {
      Run& run = runs_[*serial];
      run.update = std::move(op.update);
      run.usage.reset();  // the update states the latest usage
      return;
    }
    flush(*serial);
    if (op.kind == Op::Kind::key) {
      logfmt::append(out_, logfmt::Key{*serial, op.key, op.digest});
    } else if (op.kind == Op::Kind::remove) {
      op.remove.serial = *serial;
      logfmt::append(out_, op.remove);
      created_.erase(op.id);
      removed_.insert(op.id);
    }
  }

  // Writes what is still pending.
  void finish() {
    while (!runs_.empty()) flush(runs_.begin()->first);
  }

 private:
  // A stream's pending events (the frames of its queued appends, which outlive the encoder) and
  // record update.
  struct Run {
    std::uint64_t first = 0, count = 0, bytes = 0;
    std::vector<std::string_view> frames;
    std::optional<logfmt::Update> update;  // written after the events
    std::optional<Usage> usage;            // else: a usage the events record carries (a progress record)
  };

  std::optional<std::uint64_t> serial_of(const std::string& id) const {
    if (auto c = created_.find(id); c != created_.end()) return c->second;
    if (removed_.contains(id)) return std::nullopt;
    return index_serial_(id);
  }

  void create(Op& op) {
    if (auto old = serial_of(op.id)) flush(*old);
    const std::uint64_t serial = take_serial_();
    created_[op.id] = serial;
    removed_.erase(op.id);
    op.create.serial = serial;
    logfmt::append(out_, op.create);
    put_update(serial, op.update);
  }

  void append(std::uint64_t serial, Op& op) {
    if (const Run& run = runs_[serial];
        run.count > 0 && (run.first + run.count != op.first || run.bytes > kMaxRunBytes)) {
      flush(serial);
    }
    Run& run = runs_[serial];
    if (run.count == 0) run.first = op.first;
    run.frames.push_back(op.frames);
    run.bytes += op.frames.size();
    run.count += op.count;
    if (op.with_update) {
      run.update = std::move(op.update);
      run.usage.reset();
    } else if (op.usage && run.update) {
      run.update->input_tokens = op.usage->input_tokens;  // the pending update states it, last
      run.update->output_tokens = op.usage->output_tokens;
    } else if (op.usage) {
      run.usage = op.usage;
    }
  }

  void flush(std::uint64_t serial) {
    auto it = runs_.find(serial);
    if (it == runs_.end()) return;
    Run& run = it->second;
    if (run.count > 0) logfmt::append_events(out_, serial, run.first, run.count, run.frames, run.usage);
    if (run.update) put_update(serial, *run.update);
    runs_.erase(it);
  }

  void put_update(std::uint64_t serial, logfmt::Update& u) {
    u.serial = serial;
    logfmt::append(out_, u);
    if (is_terminal(u.status)) finished_.push_back(serial);
  }

  std::string& out_;
  std::vector<std::uint64_t>& finished_;
  std::function<std::optional<std::uint64_t>(const std::string&)> index_serial_;
  std::function<std::uint64_t()> take_serial_;
  std::unordered_map<std::string, std::uint64_t> created_;  // ids created in this batch
  std::unordered_set<std::string> removed_;                 // ids removed in this batch, unless created again
  std::unordered_map<std::uint64_t, Run> runs_;
};

}  // namespace

LogStore::Impl::~Impl() {
  stop();
  if (lock_fd >= 0) ::close(lock_fd);
}

void LogStore::Impl::stop() {
  {
    std::lock_guard lk(mu);
    closing = true;
  }
  wake.notify_all();
  if (writer.joinable()) writer.join();
}

std::string LogStore::Impl::checkpoint_path() const { return (fs::path(opts.dir) / "index").string(); }

Status LogStore::Impl::open() {
  std::error_code ec;
  seg_dir = (fs::path(opts.dir) / "segments").string();
  fs::create_directories(seg_dir, ec);
  if (ec) return dir_error(opts.dir, "cannot be created: " + ec.message());
  const std::string lock_path = (fs::path(opts.dir) / "LOCK").string();
  lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return dir_error(opts.dir, std::string("is not writable: ") + std::strerror(errno));
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) return dir_error(opts.dir, "is in use by another Spool process");
  if (auto st = replay(); !st) return st;
  writer = std::thread([this] { write_loop(); });
  return Ok{};
}

// Reads the checkpoint (if any), then every record after the position it covers.
Status LogStore::Impl::replay() {
  auto numbers = list_segments(seg_dir);
  if (!numbers) return numbers.error();
  std::pair<std::uint32_t, std::uint64_t> from{0, 0};
  std::error_code ec;
  // A segment created but killed before its header was whole holds nothing: a torn write too.
  if (!numbers->empty()) {
    const std::string last = segment_path(seg_dir, numbers->back());
    const auto size = fs::file_size(last, ec);
    std::string head;
    if (!ec && size < logfmt::kHeaderBytes) {
      std::ifstream in(last, std::ios::binary);
      head.assign(std::istreambuf_iterator<char>(in), {});
    }
    // only a beginning of its own header: anything else is not Spool's and is refused below
    if (!ec && size < logfmt::kHeaderBytes && logfmt::segment_header(numbers->back()).starts_with(head)) {
      spdlog::warn("store: {} ended in a torn write before its header was whole; removed", last);
      if (!fs::remove(last, ec) || ec) return dir_error(opts.dir, "cannot remove " + last + ": " + ec.message());
      numbers->pop_back();
    }
  }
  if (fs::exists(checkpoint_path(), ec)) {
    std::string bytes;
    const int fd = ::open(checkpoint_path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dir_error(opts.dir, "cannot open " + checkpoint_path() + ": " + std::strerror(errno));
    SegmentFile file(0, fd, checkpoint_path());
    if (auto st = file.read(0, fs::file_size(checkpoint_path(), ec), bytes); !st) return st.error();
    auto pos = index.restore(bytes);
    if (!pos) return dir_error(opts.dir, checkpoint_path() + ": " + pos.error().explanation);
    from = *pos;
  } else if (!numbers->empty() && numbers->front() != 1) {
    return dir_error(opts.dir, "the index checkpoint is missing, and segments before " +
                                   segment_path(seg_dir, numbers->front()) + " were reclaimed: it cannot be rebuilt");
  }
  for (std::uint32_t n : *numbers) {
    if (n < from.first) continue;
    const bool last = n == numbers->back();
    auto end = scan_segment(seg_dir, n, n == from.first ? from.second : 0, last,
                            [&](const Record& r, std::uint64_t at) { index.apply(r, n, at); });
    if (!end) return dir_error(opts.dir, end.error().explanation);
    if (last) {
      if (end->torn_bytes > 0) {
        spdlog::warn("store: {} ended in a torn write; cut off {} bytes after offset {}", segment_path(seg_dir, n),
                     end->torn_bytes, end->end);
      }
      auto a = ActiveSegment::reopen(n, segment_path(seg_dir, n), end->end);
      if (!a) return dir_error(opts.dir, a.error().explanation);
      active = std::move(*a);
    }
  }
  for (std::uint32_t n : *numbers) {
    auto f = open_segment(seg_dir, n);
    if (!f) return dir_error(opts.dir, f.error().explanation);
    files[n] = std::move(*f);
  }
  if (!active) {
    const std::uint32_t first = numbers->empty() ? 1 : numbers->back() + 1;
    auto a = ActiveSegment::create(first, segment_path(seg_dir, first));
    if (!a) return dir_error(opts.dir, a.error().explanation);
    active = std::move(*a);
    auto f = open_segment(seg_dir, first);
    if (!f) return dir_error(opts.dir, f.error().explanation);
    files[first] = std::move(*f);
  }
  return Ok{};
}

void LogStore::Impl::push(Op op) {
  bool waiting = false;
  {
    std::lock_guard lk(mu);
    if (closing) return;
    queue.push_back(std::move(op));
    waiting = std::exchange(writer_waits, false);
  }
  if (waiting) wake.notify_one();
}

void LogStore::Impl::write_loop() {
  std::vector<Op> batch;  // swapped with the queue: both keep their capacity
  for (;;) {
    batch.clear();
    {
      std::unique_lock lk(mu);
      // Idle a second: time to compact (a server that stopped writing still gets its space back).
      if (!closing && queue.empty()) {
        writer_waits = true;
        wake.wait_for(lk, std::chrono::seconds(1), [&] { return closing || !queue.empty(); });
      }
      writer_waits = false;
      if (queue.empty() && closing) break;  // everything written
      batch.swap(queue);
    }
    if (batch.empty()) {
      compact();
      continue;
    }
    if (!write_batch(batch)) continue;  // shutdown while failing: nobody waits any more
    for (auto& op : batch) {
      if (op.done) op.done();
    }
    compact();
    // A burst's queue is not kept (it can hold tens of MB of Ops).
    constexpr std::size_t kKeptOps = 256;
    if (batch.capacity() > kKeptOps) std::vector<Op>().swap(batch);
  }
  if (auto st = write_checkpoint(); !st) spdlog::error("store: {}", st.error().explanation);
}

// Writes `batch` (retried until it is written; given up at shutdown); false when given up.
bool LogStore::Impl::write_batch(std::vector<Op>& batch) {
  std::vector<std::uint64_t> finished;
  encode(batch, finished);
  const std::string& bytes = encoded;
  std::chrono::milliseconds backoff{100};
  for (int attempt = 1;; ++attempt) {
    Status st = bytes.empty() ? Status{Ok{}} : write_and_apply(bytes);
    if (st) break;
    bool leaving = false;
    {
      std::lock_guard lk(mu);
      failing = st.error().explanation;
      leaving = closing;
    }
    if (leaving && attempt >= 3) {
      spdlog::error("store: giving up on {} queued write(s) at shutdown: {}", batch.size(), st.error().explanation);
      return false;
    }
    spdlog::error("store: {}; retrying in {} ms", st.error().explanation, backoff.count());
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
  {
    std::lock_guard lk(mu);
    failing.reset();
  }
  commits.fetch_add(1, std::memory_order_relaxed);
  write_tables(finished);
  if (since_checkpoint >= opts.checkpoint_bytes) {
    if (auto st = write_checkpoint(); !st) spdlog::error("store: {}", st.error().explanation);
  }
  drop_dead_segments();
  return true;
}

// The records of `batch` (see BatchEncoder). `finished` gets the serials that reached a terminal status.
void LogStore::Impl::encode(std::vector<Op>& batch, std::vector<std::uint64_t>& finished) {
  constexpr std::size_t kKeptCapacity = std::size_t{1} << 20;  // a burst's buffer is not kept
  if (encoded.capacity() > kKeptCapacity) std::string().swap(encoded);
  encoded.clear();
  BatchEncoder encoder(
      encoded, finished,
      [this](const std::string& id) -> std::optional<std::uint64_t> {
        std::lock_guard lk(index_mu);
        const IndexEntry* e = index.find(id);
        return e ? std::optional(e->serial) : std::nullopt;
      },
      [this] {
        std::lock_guard lk(index_mu);
        return index.take_serial();
      });
  for (auto& op : batch) encoder.add(op);
  encoder.finish();
}

// One write of `bytes` (whole records) to the active segment, rolled first when full; then the
// index learns where each record is.
Status LogStore::Impl::write_and_apply(const std::string& bytes) {
  if (active->size() + bytes.size() > opts.segment_bytes && active->size() > logfmt::kHeaderBytes) {
    const std::uint32_t next = active->number() + 1;
    auto a = ActiveSegment::create(next, segment_path(seg_dir, next));
    if (!a) return a.error();
    auto f = open_segment(seg_dir, next);
    if (!f) return f.error();
    if (opts.fsync_each) {
      if (auto st = active->sync(); !st) return st;
    }
    active = std::move(*a);
    std::lock_guard lk(index_mu);
    files[next] = std::move(*f);
  }
  const std::uint64_t base = active->size();
  if (auto st = active->append(bytes); !st) return st;
  if (opts.fsync_each) {
    if (auto st = active->sync(); !st) return st;
  }
  since_checkpoint += bytes.size();
  std::lock_guard lk(index_mu);
  std::string_view rest(bytes);
  std::uint64_t at = base;
  Record r;
  while (!rest.empty() && logfmt::decode(rest, r) == logfmt::Decoded::ok) {
    index.apply(r, active->number(), at);
    at += r.size;
    rest.remove_prefix(r.size);
  }
  return Ok{};
}

// Each finished stream's extents in one table record, so memory keeps only where that is.
void LogStore::Impl::write_tables(const std::vector<std::uint64_t>& finished) {
  std::string out;
  {
    std::lock_guard lk(index_mu);
    for (std::uint64_t serial : finished) {
      const IndexEntry* e = index.find(serial);
      if (e == nullptr || e->extents.empty()) continue;
      logfmt::append(out, logfmt::Table{serial, e->extents});
    }
  }
  if (out.empty()) return;
  // Optional: without it a stream's extents stay in memory, from the events records.
  if (auto st = write_and_apply(out); !st) spdlog::warn("store: {}", st.error().explanation);
}

Status LogStore::Impl::write_checkpoint() {
  std::string bytes;
  {
    std::lock_guard lk(index_mu);
    const auto forgotten = std::chrono::system_clock::now() - kIncarnationMemory;
    index.prune_tombstones(logstore::to_us(forgotten), kMostTombstones);
    bytes = index.checkpoint(active->number(), active->size());
  }
  const std::string tmp = checkpoint_path() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return dir_error(opts.dir, "cannot write " + tmp + ": " + std::strerror(errno));
  std::size_t put = 0;
  bool ok = true;
  while (ok && put < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + put, bytes.size() - put);
    if (w < 0 && errno == EINTR) continue;
    ok = w > 0;
    if (ok) put += static_cast<std::size_t>(w);
  }
  ok = ok && ::fdatasync(fd) == 0;
  const std::string why = std::strerror(errno);
  ::close(fd);
  if (!ok) return dir_error(opts.dir, "cannot write " + tmp + ": " + why);
  // The segments it covers are synced first: the checkpoint never points past what is on disk.
  if (auto st = active->sync(); !st) return st;
  if (::rename(tmp.c_str(), checkpoint_path().c_str()) != 0) {
    return dir_error(opts.dir, "cannot replace " + checkpoint_path() + ": " + std::strerror(errno));
  }
  since_checkpoint = 0;
  return Ok{};
}

// Unlinks the closed segments no stored stream has records in (after a checkpoint that no
// longer needs them). Readers holding one open keep reading it.
void LogStore::Impl::drop_dead_segments() {
  std::vector<std::uint32_t> dead;
  {
    std::lock_guard lk(index_mu);
    for (const auto& [n, file] : files) {
      if (n != active->number() && index.live_bytes(n) == 0) dead.push_back(n);
    }
  }
  if (dead.empty()) return;
  if (auto st = write_checkpoint(); !st) {
    spdlog::error("store: {}", st.error().explanation);
    return;
  }
  for (std::uint32_t n : dead) {
    const std::string path = segment_path(seg_dir, n);
    if (::unlink(path.c_str()) != 0) {
      spdlog::warn("store: cannot remove {}: {}", path, std::strerror(errno));
      continue;
    }
    std::lock_guard lk(index_mu);
    files.erase(n);
  }
}

}  // namespace spool
