// spool: the binary. `spool serve` runs the server; chat, start, watch, status, cancel, rm and ls are its client.
#include "app/app.hpp"
#include "app/config.hpp"
#include "cli/commands.hpp"
#include "cli/requests.hpp"

#include <iostream>

using namespace spool;

int main(int argc, char** argv) {
  CLI::App app{"Spool: LLM chat completions as background jobs"};
  app.require_subcommand(1);
  Config cfg;
  CLI::App* serve_cmd = app.add_subcommand("serve", "Run the server");
  // The server's configuration file means nothing to the client subcommands.
  if (argc < 2 || !cli::is_client_command(argv[1])) {
    try {
      load_config_file_and_legacy_env(argc, argv, cfg);
    } catch (const std::exception& e) {
      std::cerr << "spool: " << e.what() << "\n";
      return 2;
    }
  }
  add_serve_options(*serve_cmd, cfg);
  cli::Commands client(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : cli::exit_code::usage;
  }
  if (serve_cmd->parsed()) {
    try {
      finalize_config(cfg);
    } catch (const std::exception& e) {
      std::cerr << "spool: " << e.what() << "\n";
      return 2;
    }
    return App::serve(std::move(cfg));
  }
  if (auto rc = client.run()) return *rc;
  return 0;
}
