// airlock: the command-line entry point. Parses flags with CLI11 and dispatches to the
// command groups; every command reports errors as one clear line on stderr and a
// non-zero exit (2 for usage and policy errors, 125 for airlock's own failures).
#include <iostream>

#include "runtime/cli/commands.hpp"

#ifndef AIRLOCK_VERSION
#define AIRLOCK_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  CLI::App app{"airlock: run untrusted code in QEMU microVMs with policed network egress"};
  app.set_version_flag("--version", std::string("airlock ") + AIRLOCK_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);
  airlock::cli::register_policy_commands(app);
#ifdef AIRLOCK_HAVE_VM_COMMANDS
  airlock::cli::register_vm_commands(app);
  airlock::cli::register_debug_commands(app);
  airlock::cli::register_proxy_commands(app);
  airlock::cli::register_api_commands(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "airlock: " << e.what() << "\n";
    std::cerr << "Run with --help for more information.\n";
    return airlock::cli::kExitUsage;
  }
  // Commands run from their callbacks and store their exit code here.
  return airlock::cli::exit_code();
}
