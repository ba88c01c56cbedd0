// The client subcommands of the `spool` binary: chat, start, watch, status, cancel, rm, ls.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string_view>

namespace spool::cli {

// True when `name` is one of the client subcommands.
bool is_client_command(std::string_view name);

// Declares the client subcommands (and the exit-code help footer) on `app`; after app.parse(),
// run() runs whichever of them was parsed.
class Commands {
 public:
  explicit Commands(CLI::App& app);
  Commands(const Commands&) = delete;
  Commands& operator=(const Commands&) = delete;
  ~Commands();

  // The parsed client subcommand's exit code (see exit_codes_help()), or nullopt when none was parsed.
  std::optional<int> run();

  struct Options;

 private:
  std::unique_ptr<Options> opts_;
};

}  // namespace spool::cli
