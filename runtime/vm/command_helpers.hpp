// Pure helpers behind the VM commands of the CLI (runtime/cli/vm_commands.cpp), kept
// here so they are unit tested: `cp` endpoints, VM id lookup by prefix, and the exit
// code a run/exec reports for a guest outcome.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "runtime/vm/client.hpp"

namespace airlock::runtime {

// One side of `airlock cp`: "ID:/guest/path" (a VM) or a host path.
struct CopyEndpoint {
  std::optional<std::string> vm;  // set for the VM side
  std::string path;
};
// A ':' before the first '/' marks a VM ("vm-1a2b3c4d:/x", "vm-1a2b:/x" by prefix);
// "./a:b" and "/tmp/a:b" are host paths. The guest path must be absolute.
Result<CopyEndpoint> parse_copy_endpoint(std::string_view text);

// Resolves a full id or a unique prefix among ids (as `docker` does).
Result<std::string> resolve_vm_id(std::string_view wanted, const std::vector<std::string>& ids);

// The exit code of run/exec: the command's own, or 127 (not found) / 126 (not
// executable) as a shell reports them, or 125 for other failures to start.
int exit_code_for(const ExecOutcome& outcome);

}  // namespace airlock::runtime
