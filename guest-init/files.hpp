// The host's file operations: file.write, file.read, file.list, file.stat, file.mkdir,
// file.remove.
//
// Theory of operation: these run as root inside guest-init (they are the host's own API,
// not the sandboxed user's). Paths must be absolute, without NUL, under PATH_MAX.
// file.write streams file_data frames into a temporary file beside the target
// (".airlock-tmp-*", created O_EXCL) and renames it into place on the empty end frame,
// so readers never see a half-written file; a declared size must match what arrived,
// and more than kMaxFileSize is refused (too_large). New files and parent directories
// take the owner of the directory they are created in, so the host writing into the
// workspace produces files the sandbox user owns. file.read replies ok {size, mode} and
// then streams the file in kMaxPayload chunks, pacing itself on the outbox. file.list
// caps its reply to one frame and says "truncated" when it had to. file.remove refuses
// "/" and does not follow symlinks when recursing. Each op that changes something
// outside the watched workspace reports its own file event (inside it inotify does).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "guest-init/session.hpp"
#include "protocol/messages.hpp"

namespace airlock::guest {

inline constexpr std::uint64_t kMaxFileSize = 1ULL << 30;

// Handles one file.* request. Immediate ops reply and return nullptr; streaming ops
// (write, read) return the session that carries on; errors are replied here.
std::unique_ptr<Session> handle_file_request(const std::string& op, std::uint32_t channel,
                                             const protocol::Json& request, SessionContext ctx);

}  // namespace airlock::guest
