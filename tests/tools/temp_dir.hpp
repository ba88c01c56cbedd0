// A fresh directory under the system's temporary directory for one test, removed afterwards.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace spool::testing {

struct TempDir {
  // `tag` names the test's files (spool-<tag>-<pid>-<n>).
  explicit TempDir(const std::string& tag = "test")
      : path((std::filesystem::temp_directory_path() /
              ("spool-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
                 .string()) {
    std::filesystem::remove_all(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path;
  static inline int counter = 0;
};

}  // namespace spool::testing
