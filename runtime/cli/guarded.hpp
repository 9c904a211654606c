// How a command body's failures become one line on stderr and an exit code: policy and
// flag errors exit 2, airlock's own failures (CommandError, SandboxError, anything else)
// exit 125. Shared by the command files of the CLI.
#pragma once

#include <iostream>
#include <stdexcept>

#include "policy/policy.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/vm/sandbox_error.hpp"

namespace airlock::cli {

// A failure of airlock itself: reported as one line, exit 125.
struct CommandError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Runs a command body, mapping exceptions to the shared exit codes.
template <typename F>
void guarded(F&& body) {
  try {
    set_exit_code(body());
  } catch (const policy::PolicyError& e) {
    std::cerr << "airlock: " << e.what() << "\n";
    set_exit_code(kExitUsage);
  } catch (const std::exception& e) {
    std::cerr << "airlock: " << e.what() << "\n";
    set_exit_code(kExitRuntime);
  }
}

}  // namespace airlock::cli
