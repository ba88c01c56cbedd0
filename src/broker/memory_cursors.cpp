#include "broker/memory_cursors.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace spool {
namespace asio = boost::asio;

namespace {

class MemoryCursor final : public Cursor {
 public:
  // `s` counts this cursor among its observers already (MemoryBroker::open).
  MemoryCursor(std::shared_ptr<MemoryBroker::Stream> s, std::uint64_t after, const asio::any_io_executor& ex,
               std::atomic<std::size_t>& open_cursors)
      : s_(std::move(s)), pos_(after), waker_(std::make_shared<Waker>(ex)), open_cursors_(open_cursors) {
    open_cursors_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lk(s_->mu);
    exhausted_ = s_->ended && pos_ >= s_->visible;
  }

  ~MemoryCursor() override {
    open_cursors_.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard lk(s_->mu);
    --s_->info.observers;
    s_->evict_if_idle_locked();
  }

  asio::awaitable<ReadChunk> next() override {
    ReadChunk chunk;
    buffers_.clear();
    for (;;) {
      if (aborted_) co_return chunk;
      if (interrupted_) {
        interrupted_ = false;
        chunk.kind = ReadChunk::Kind::interrupted;
        co_return chunk;
      }
      {
        std::lock_guard lk(s_->mu);
        if (s_->removed) co_return chunk;
        if (pos_ < s_->visible) {
          const std::uint64_t to = s_->log.gather(pos_, s_->visible, kMaxChunkBytes, buffers_);
          chunk.kind = ReadChunk::Kind::data;
          chunk.events = to - pos_;
          chunk.buffers = buffers_;
          pos_ = to;
          co_return chunk;
        }
        if (s_->ended) co_return chunk;
        if (!waker_->registered) {
          waker_->registered = true;
          s_->waiters.push_back(waker_);
        }
      }
      co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
          [w = waker_.get()](auto handler) { w->handler.emplace(std::move(handler)); }, asio::use_awaitable);
    }
  }

  void interrupt() override {
    interrupted_ = true;
    waker_->fire_later();
  }

  void abort() override {
    aborted_ = true;
    waker_->fire_later();
  }

  bool exhausted_at_open() const override { return exhausted_; }

 private:
  std::shared_ptr<MemoryBroker::Stream> s_;
  std::uint64_t pos_;
  std::shared_ptr<Waker> waker_;
  std::atomic<std::size_t>& open_cursors_;
  std::vector<asio::const_buffer> buffers_;  // what the last next() returned
  bool aborted_ = false;
  bool interrupted_ = false;
  bool exhausted_ = false;
};

// Runs `f` on `where`, then resumes the caller on its own executor. Not a coroutine (g++ 12
// mishandles temporaries around co_await).
template <class F>
asio::awaitable<void> run_on(const asio::any_io_executor& where, F f) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [where, f = std::move(f)](auto handler) mutable {
        auto back = asio::get_associated_executor(handler);
        asio::post(where, [f = std::move(f), handler = std::move(handler), back]() mutable {
          f();
          asio::post(back, std::move(handler));
        });
      },
      asio::use_awaitable);
}

// A cursor on a log that left memory: it reads the store on the disk executor, a chunk at a time.
// The stream has ended, so nothing is waited for.
class StoredCursor final : public Cursor {
 public:
  // `s` counts this cursor among its observers already (MemoryBroker::open).
  StoredCursor(std::shared_ptr<MemoryBroker::Stream> s, std::uint64_t after, asio::any_io_executor disk,
               std::atomic<std::size_t>& open_cursors)
      : s_(std::move(s)), pos_(after), disk_(std::move(disk)), open_cursors_(open_cursors) {
    open_cursors_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lk(s_->mu);
    end_ = s_->visible;
    exhausted_ = pos_ >= end_;
  }

  ~StoredCursor() override {
    open_cursors_.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard lk(s_->mu);
    --s_->info.observers;
  }

  asio::awaitable<ReadChunk> next() override {
    ReadChunk chunk;
    if (aborted_) co_return chunk;
    if (interrupted_) {
      interrupted_ = false;
      chunk.kind = ReadChunk::Kind::interrupted;
      co_return chunk;
    }
    {
      std::lock_guard lk(s_->mu);
      if (s_->removed) co_return chunk;
    }
    if (pos_ >= end_) co_return chunk;
    // The read owns what it touches: it finishes on the disk thread even if this cursor is
    // destroyed meanwhile (shutdown).
    auto work = [st = st_, s = s_, pos = pos_] {
      st->buf.clear();
      if (!st->log) st->log = s->store->open_log(s->info.id);
      st->read = st->log->read(pos, kMaxChunkBytes, st->buf);
    };
    co_await run_on(disk_, std::move(work));
    Result<std::uint64_t>& read = st_->read;
    if (!read || *read == 0) {
      if (!read) spdlog::error("store: reading {}: {}", s_->info.id, read.error().explanation);
      co_return chunk;  // the stream ends here for this observer; the log says why
    }
    const std::uint64_t n = std::min(*read, end_ - pos_);
    buffer_ = asio::const_buffer(st_->buf.data(), st_->buf.size());
    chunk.kind = ReadChunk::Kind::data;
    chunk.events = n;
    chunk.buffers = {&buffer_, 1};
    pos_ += n;
    co_return chunk;
  }

  void interrupt() override { interrupted_ = true; }
  void abort() override { aborted_ = true; }
  bool exhausted_at_open() const override { return exhausted_; }

 private:
  // What the disk thread reads into.
  struct ReadState {
    std::unique_ptr<StoredLog> log;  // opened by the first read
    std::string buf;                 // what the last next() returned
    Result<std::uint64_t> read = std::uint64_t{0};
  };

  std::shared_ptr<MemoryBroker::Stream> s_;
  std::uint64_t pos_;
  std::uint64_t end_ = 0;
  bool exhausted_ = false;
  asio::any_io_executor disk_;
  std::atomic<std::size_t>& open_cursors_;
  std::shared_ptr<ReadState> st_ = std::make_shared<ReadState>();
  asio::const_buffer buffer_;
  bool aborted_ = false;
  bool interrupted_ = false;
};

}  // namespace

std::unique_ptr<Cursor> make_memory_cursor(std::shared_ptr<MemoryBroker::Stream> s, std::uint64_t after,
                                           const asio::any_io_executor& ex, std::atomic<std::size_t>& open_cursors) {
  return std::make_unique<MemoryCursor>(std::move(s), after, ex, open_cursors);
}

std::unique_ptr<Cursor> make_stored_cursor(std::shared_ptr<MemoryBroker::Stream> s, std::uint64_t after,
                                           asio::any_io_executor disk, std::atomic<std::size_t>& open_cursors) {
  return std::make_unique<StoredCursor>(std::move(s), after, std::move(disk), open_cursors);
}

bool LingeringLogs::admit(std::weak_ptr<MemoryBroker::Stream> s, std::size_t bytes, std::uint64_t ticket,
                          Clock::time_point now) {
  std::lock_guard lk(mu_);
  if (linger_.count() <= 0 || bytes_ + bytes > budget_) return false;
  bytes_ += bytes;
  stays_.push_back(Stay{std::move(s), bytes, ticket, now + linger_});
  return true;
}

std::vector<std::pair<std::weak_ptr<MemoryBroker::Stream>, std::uint64_t>> LingeringLogs::due(Clock::time_point now) {
  std::vector<std::pair<std::weak_ptr<MemoryBroker::Stream>, std::uint64_t>> out;
  std::lock_guard lk(mu_);
  while (!stays_.empty() && stays_.front().until <= now) {
    bytes_ -= stays_.front().bytes;
    out.emplace_back(std::move(stays_.front().stream), stays_.front().ticket);
    stays_.pop_front();
  }
  return out;
}

}  // namespace spool
