#include "core/log.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace spool {
namespace {

// What one log_event call writes to stderr in `format`.
std::string logged(const std::string& format, std::string_view msg, std::initializer_list<LogField> fields) {
  char path[] = "/tmp/spool-log-test-XXXXXX";
  const int fd = mkstemp(path);
  std::fflush(stderr);
  const int saved = dup(2);
  dup2(fd, 2);
  spdlog::drop("spool");
  setup_logging("info", format);
  log_event(spdlog::level::warn, msg, fields);
  spdlog::default_logger()->flush();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(path);
  return ss.str();
}

TEST(Log, SeparatorsAndControlCharactersInValuesForgeNoField) {
  const std::string forged =
      "upstream said \x1fmessage_id\x1f"
      "forged-id\nnext line";
  const std::string text = logged("text", "job failed", {{"message_id", "real"}, {"error", forged}});
  EXPECT_NE(text.find(" message_id=real "), std::string::npos) << text;
  EXPECT_EQ(text.find("message_id=forged-id"), std::string::npos) << text;
  EXPECT_EQ(text.find('\x1f'), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;  // one line
  EXPECT_NE(text.find(R"(error="upstream said \u001fmessage_id\u001fforged-id\nnext line")"), std::string::npos)
      << text;

  const std::string json = logged("json", "job failed", {{"message_id", "real"}, {"error", forged + "\xFF"}});
  EXPECT_NE(json.find(R"("message_id":"real","error":"upstream said \u001fmessage_id\u001fforged-id\nnext line)"
                      "\xEF\xBF\xBD\"}"),
            std::string::npos)
      << json;
}

}  // namespace
}  // namespace spool
