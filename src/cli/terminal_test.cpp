// Tests for the progress line's modes and escape sequences.
#include "cli/terminal.hpp"

#include <gtest/gtest.h>

namespace spool::cli {
namespace {

TEST(CliProgress, ModeFollowsWhereTheStreamsGo) {
  using M = ProgressLine::Mode;
  EXPECT_EQ(ProgressLine::choose({false, false, false, 0}, false), M::off) << "all piped";
  EXPECT_EQ(ProgressLine::choose({true, false, false, 0}, false), M::off) << "stderr piped";
  EXPECT_EQ(ProgressLine::choose({true, true, true, 40}, true), M::off) << "--quiet";
  EXPECT_EQ(ProgressLine::choose({true, true, true, 40}, false), M::scroll_region);
  EXPECT_EQ(ProgressLine::choose({true, true, true, 0}, false), M::off) << "same terminal, size unknown";
  EXPECT_EQ(ProgressLine::choose({false, true, false, 40}, false), M::line) << "stdout piped";
  EXPECT_EQ(ProgressLine::choose({true, true, false, 40}, false), M::line) << "another terminal";
}

TEST(CliProgress, ScrollRegionKeepsTheLastRow) {
  EXPECT_EQ(scroll_region_begin(24), "\n\0337\033[1;23r\0338\033[1A");
  EXPECT_EQ(scroll_region_draw(24, "x"), "\0337\033[24;1H\033[2Kx\0338");
  EXPECT_EQ(scroll_region_end(24), "\0337\033[r\0338\0337\033[24;1H\033[2K\0338");

  std::string err;
  int rows = 24;
  {
    ProgressLine p(
        ProgressLine::Mode::scroll_region, [&](std::string_view s) { err += s; }, [&] { return rows; });
    p.show("a");
    EXPECT_EQ(err, scroll_region_begin(24) + scroll_region_draw(24, "a"));
    err.clear();
    p.write_err("thinking");  // shares the region: written as is
    EXPECT_EQ(err, "thinking");
    err.clear();
    rows = 30;
    p.show("b");
    EXPECT_EQ(err, "\0337\033[24;1H\033[2K\0338" + scroll_region_resize(30) + scroll_region_draw(30, "b"));
    err.clear();
  }  // the destructor finishes
  EXPECT_EQ(err, scroll_region_end(30));
}

TEST(CliProgress, LineModeHoldsPartialStderrLines) {
  std::string err;
  ProgressLine p(
      ProgressLine::Mode::line, [&](std::string_view s) { err += s; }, [] { return 0; });
  p.show("1 tokens");
  EXPECT_EQ(err, "\r1 tokens\033[K");
  err.clear();
  p.write_err("part");
  EXPECT_EQ(err, "") << "held until its newline";
  p.write_err(" one\ntwo");
  EXPECT_EQ(err, "\r\033[Kpart one\n\r1 tokens\033[K");
  err.clear();
  p.finish();
  EXPECT_EQ(err, "\r\033[Ktwo");
  err.clear();
  p.finish();
  p.show("again");
  EXPECT_EQ(err, "") << "finished lines stay away";
}

TEST(CliProgress, OffDrawsNothing) {
  std::string err;
  ProgressLine p(
      ProgressLine::Mode::off, [&](std::string_view s) { err += s; }, [] { return 24; });
  p.show("x");
  p.write_err("think");
  p.finish();
  EXPECT_EQ(err, "think");
}

}  // namespace
}  // namespace spool::cli
