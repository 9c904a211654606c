// The VM commands of the CLI: run, create, start, exec, cp, ls, stop, rm, logs, events,
// image. Registered by register_vm_commands() (declared in commands.hpp, defined in
// vm_commands.cpp; cp in cp_command.cpp). Each reports its own failures as one line on
// stderr and exit code 125; run and exec exit with the command's code.
#pragma once

#include "runtime/cli/commands.hpp"

namespace airlock::cli {

void register_cp_command(CLI::App& app);  // runtime/cli/cp_command.cpp

}  // namespace airlock::cli
