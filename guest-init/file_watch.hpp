// File events for the workspace, from inotify, as {"op":"event","file":{...}} messages.
//
// Theory of operation: one inotify instance watches every directory under the workspace
// (a watch per directory; inotify is not recursive). A new directory gets a watch at
// once and is scanned, so files created in it before the watch existed are still
// reported. Events map to ops: IN_CREATE -> create (mkdir for directories),
// IN_CLOSE_WRITE -> write with the final size (one event per writer close, not per
// write(2), which coalesces bursts), IN_DELETE -> remove, IN_MOVED_FROM + IN_MOVED_TO
// with the same cookie -> rename (from, path); a MOVED_FROM is held for up to
// kMovePairWindow waiting for its MOVED_TO (the two may arrive in separate reads), and
// without one it is a remove (moved out); a lone MOVED_TO is a create (moved in). Renaming a watched directory
// rewrites the paths of its watches. Names starting with kTempPrefix (guest-init's own
// temporary files for file.write) are hidden: the final rename of one into place is
// reported as a write of the target, so a host write shows up as one event.
// Limits: at most kMaxWatches directories (and the kernel's own limit); a warning is
// logged when hit. Directories of another filesystem mounted below the root (9p shares
// inside the workspace) are not descended into: the host sees those changes on its own
// side, and walking a large host tree would delay the boot. A queue overflow loses
// events (a "log" warning goes to the host). Changes made on the host side of a share
// are never seen (inotify only sees the guest's own changes).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>
#include <map>
#include <string>
#include <string_view>

#include <sys/types.h>

#include "guest-init/outbox.hpp"

namespace airlock::guest {

inline constexpr std::string_view kTempPrefix = ".airlock-tmp-";
inline constexpr std::size_t kMaxWatches = 8192;
inline constexpr std::chrono::milliseconds kMovePairWindow{50};

class FileWatch {
 public:
  FileWatch() = default;
  FileWatch(const FileWatch&) = delete;
  FileWatch& operator=(const FileWatch&) = delete;
  ~FileWatch();

  // Starts watching root recursively; false (logged) if inotify is unavailable.
  bool start(const std::string& root);
  int fd() const { return fd_; }
  // Reads pending inotify events and queues the file events.
  void on_readable(Outbox& outbox);
  // When held renames must be resolved (on_time then reports them as removes).
  std::optional<std::chrono::steady_clock::time_point> deadline() const;
  void on_time(Outbox& outbox, std::chrono::steady_clock::time_point now);
  // True when changes to path are reported by the watch (path is under the root).
  bool covers(std::string_view path) const;
  static void emit(Outbox& outbox, std::string_view op, std::string_view path, std::int64_t size,
                   std::string_view from = {});

 private:
  void add_tree(const std::string& dir, Outbox* outbox);
  void rename_watches(const std::string& from, const std::string& to);
  void forget_tree(const std::string& dir);
  bool watched(const std::string& dir) const;

  struct PendingMove {
    std::uint32_t cookie;
    std::string path;
    bool is_dir;
    bool temp;
    std::chrono::steady_clock::time_point expires;
  };

  int fd_ = -1;
  std::string root_;
  dev_t root_dev_ = 0;
  bool warned_limit_ = false;
  std::map<int, std::string> paths_;  // watch descriptor -> directory path
  std::vector<PendingMove> pending_moves_;
};

}  // namespace airlock::guest
