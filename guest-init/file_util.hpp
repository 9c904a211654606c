// Path, ownership and event helpers shared by the host's file operations (files.cpp) and
// whole-tree transfers (tree_transfer.cpp). Everything here runs as root in guest-init.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <sys/types.h>

#include "guest-init/session.hpp"

namespace airlock::guest {

// Absolute, without NUL, under PATH_MAX.
bool valid_abs_path(const std::string& path);
std::string parent_of(const std::string& path);
std::string base_of(const std::string& path);
// A file event for a change the workspace watcher can't see (outside the workspace).
void report(SessionContext ctx, std::string_view op, const std::string& path, std::int64_t size);
// Gives path (or fd) the owner of its parent directory: the host writing into the
// workspace produces files the sandbox user owns. Best effort.
void inherit_owner(const std::string& path, int fd = -1);
// mkdir -p with mode for created components; returns 0 or an errno.
int make_dirs(const std::string& path, mode_t mode, SessionContext ctx);

}  // namespace airlock::guest
