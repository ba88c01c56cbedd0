#include "cli/terminal.hpp"

#include <fmt/format.h>

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace spool::cli {

TerminalInfo detect_terminal() {
  TerminalInfo t;
  t.stdout_tty = ::isatty(STDOUT_FILENO) == 1;
  t.stderr_tty = ::isatty(STDERR_FILENO) == 1;
  if (t.stdout_tty && t.stderr_tty) {
    struct stat a {};
    struct stat b {};
    t.same_terminal = ::fstat(STDOUT_FILENO, &a) == 0 && ::fstat(STDERR_FILENO, &b) == 0 && a.st_rdev == b.st_rdev &&
                      a.st_dev == b.st_dev;
  }
  if (t.stderr_tty) t.rows = terminal_rows();
  return t;
}

int terminal_rows() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) return ws.ws_row;
  // A terminal that does not know its size (a pseudo-terminal nobody sized): what curses assumes.
  if (const char* lines = std::getenv("LINES")) {
    const int n = std::atoi(lines);
    if (n > 0) return n;
  }
  return 24;
}

bool write_fd(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string scroll_region_begin(int rows) {
  // A newline first makes room when the cursor is on the last row; the cursor then goes back up
  // into the region (DECSTBM homes the cursor, hence save/restore around it).
  return fmt::format("\n\0337\033[1;{}r\0338\033[1A", rows - 1);
}

std::string scroll_region_draw(int rows, std::string_view text) {
  return fmt::format("\0337\033[{};1H\033[2K{}\0338", rows, text);
}

std::string scroll_region_resize(int rows) { return fmt::format("\0337\033[1;{}r\0338", rows - 1); }

std::string scroll_region_end(int rows) { return fmt::format("\0337\033[r\0338\0337\033[{};1H\033[2K\0338", rows); }

ProgressLine::Mode ProgressLine::choose(const TerminalInfo& t, bool quiet) {
  if (quiet || !t.stderr_tty) return Mode::off;
  if (t.stdout_tty && t.same_terminal) return t.rows >= 3 ? Mode::scroll_region : Mode::off;
  return Mode::line;
}

ProgressLine::ProgressLine(Mode mode, std::function<void(std::string_view)> err, std::function<int()> rows)
    : mode_(mode), err_(std::move(err)), rows_(std::move(rows)) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::show(std::string_view text) {
  text_ = text;
  if (mode_ == Mode::line) {
    err_(fmt::format("\r{}\033[K", text));
    visible_ = true;
  } else if (mode_ == Mode::scroll_region) {
    const int rows = rows_();
    if (rows < 3) return;  // too small (or unknown) now: draw again when it grows
    std::string s;
    if (drawn_rows_ == 0) {
      s = scroll_region_begin(rows);
    } else if (rows != drawn_rows_) {
      s = fmt::format("\0337\033[{};1H\033[2K\0338", drawn_rows_) + scroll_region_resize(rows);
    }
    drawn_rows_ = rows;
    s += scroll_region_draw(rows, text);
    err_(s);
    visible_ = true;
  }
}

void ProgressLine::write_err(std::string_view s) {
  if (mode_ != Mode::line) {
    err_(s);
    return;
  }
  held_ += s;
  const auto nl = held_.rfind('\n');
  if (nl == std::string::npos) return;
  std::string lines = held_.substr(0, nl + 1);
  held_.erase(0, nl + 1);
  if (visible_) {
    err_("\r\033[K" + lines + fmt::format("\r{}\033[K", text_));
  } else {
    err_(lines);
  }
}

void ProgressLine::finish() {
  if (mode_ == Mode::line) {
    std::string s = visible_ ? "\r\033[K" : "";
    s += held_;
    held_.clear();
    if (!s.empty()) err_(s);
  } else if (mode_ == Mode::scroll_region && drawn_rows_ > 0) {
    err_(scroll_region_end(drawn_rows_));
  }
  visible_ = false;
  drawn_rows_ = 0;
  mode_ = Mode::off;
}

}  // namespace spool::cli
