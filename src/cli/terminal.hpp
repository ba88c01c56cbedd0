// The terminal side of the command-line client: what stdout/stderr are, unbuffered writes, and a
// live progress line on stderr.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace spool::cli {

// What the standard streams are connected to.
struct TerminalInfo {
  bool stdout_tty = false;
  bool stderr_tty = false;
  bool same_terminal = false;  // stdout and stderr are the same terminal device
  int rows = 0;                // rows of the terminal on stderr (terminal_rows()); 0 when not a terminal
};

// Looks at file descriptors 1 and 2.
TerminalInfo detect_terminal();

// Rows of the terminal on stderr (ioctl TIOCGWINSZ); when it does not know, $LINES or else 24.
int terminal_rows();

// Writes all of `s` to `fd` at once (retrying short writes and EINTR); false on a write error.
bool write_fd(int fd, std::string_view s);

// Escape sequences of the scroll-region progress line (apt's technique): the region is every row
// but the last, which the line keeps.
std::string scroll_region_begin(int rows);
std::string scroll_region_draw(int rows, std::string_view text);
std::string scroll_region_resize(int rows);
std::string scroll_region_end(int rows);

// A live status line on stderr, redrawn in place, removed by finish(); writes to stderr go through
// it so they never collide with the line.
class ProgressLine {
 public:
  enum class Mode {
    off,            // nothing is drawn (stderr not a terminal, or --quiet)
    line,           // "\r text ESC[K" on stderr (stdout goes elsewhere)
    scroll_region,  // the terminal's last row, below a scroll region that stdout and stderr share
  };

  // off unless stderr is a terminal and !quiet; scroll_region when stdout is that same terminal and
  // its size is known (with stdout on it but the size unknown, off); line otherwise.
  static Mode choose(const TerminalInfo& t, bool quiet);

  // `err` writes to stderr; `rows` reads the terminal's current row count.
  ProgressLine(Mode mode, std::function<void(std::string_view)> err, std::function<int()> rows);
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  ~ProgressLine();

  Mode mode() const { return mode_; }
  // Draws `text` as the line (setting the terminal up on the first call).
  void show(std::string_view text);
  // Writes `s` to stderr; in line mode whole lines only, holding a partial last line back until
  // its newline or finish(), so the redrawn line never overwrites it.
  void write_err(std::string_view s);
  // Removes the line and restores the terminal; idempotent. Flushes held-back stderr text.
  void finish();

 private:
  Mode mode_;
  std::function<void(std::string_view)> err_;
  std::function<int()> rows_;
  int drawn_rows_ = 0;  // scroll_region: rows the region was set for; 0 before the first show()
  bool visible_ = false;
  std::string text_;
  std::string held_;
};

}  // namespace spool::cli
