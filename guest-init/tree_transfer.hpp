// file.upload and file.download: whole directory trees in one request.
//
// Theory of operation (the entry stream is protocol/tree.hpp's): the root is the path the
// host named. Its parent is resolved normally (the host chose it); the root itself is
// never a symlink (O_NOFOLLOW), and it is held open for the whole transfer, so the
// sandboxed code can't swap it for a link between two entries. Every entry below it is
// resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
// from that descriptor and its last component is created or opened with O_NOFOLLOW /
// *at() calls: a link planted in the destination (or sent in the tree) is recreated or
// replaced, never followed. These ops run as root, so this is what keeps a hostile
// sandbox from turning a host upload into a write to /etc.
//
// Why guest-init and not tar: a tar binary in the image would be one more program whose
// link handling we'd have to trust, running as root on attacker-shaped trees; entries on
// the control channel reuse the framing, flow control and error codes already there.
//
// Upload: the root is created (mode 0755, owner of its parent) unless it is already a
// directory. Files go to a temporary name beside their target and are renamed into
// place when their empty end frame arrives; new entries take their directory's owner.
// Directory modification times are applied at the end (writing children changes them).
// Download: entries in pre-order (the root first, as path ""), file data paced on the
// outbox, then {"op":"end",counts}. Unreadable entries, devices, fifos and sockets are
// skipped and counted; so are directories deeper than kMaxTreeDepth.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "guest-init/session.hpp"

namespace airlock::guest {

std::unique_ptr<Session> start_upload(std::uint32_t channel, const std::string& root, SessionContext ctx);
std::unique_ptr<Session> start_download(std::uint32_t channel, const std::string& root, SessionContext ctx);

}  // namespace airlock::guest
