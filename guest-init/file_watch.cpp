// Recursive inotify watch of the workspace (see file_watch.hpp).
#include "guest-init/file_watch.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest-init/log.hpp"

namespace airlock::guest {
namespace {

constexpr std::uint32_t kDirMask = IN_CREATE | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                   IN_DELETE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK;

bool is_temp(std::string_view name) { return name.substr(0, kTempPrefix.size()) == kTempPrefix; }

std::int64_t size_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::int64_t>(st.st_size);
}

std::string join(const std::string& dir, std::string_view name) {
  std::string out = dir;
  if (out.empty() || out.back() != '/') out.push_back('/');
  out.append(name);
  return out;
}

struct RawEvent {
  int wd;
  std::uint32_t mask;
  std::uint32_t cookie;
  std::string name;
};

}  // namespace

FileWatch::~FileWatch() {
  if (fd_ >= 0) ::close(fd_);
}

bool FileWatch::start(const std::string& root) {
  fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) {
    log_errno("inotify_init1", errno);
    return false;
  }
  root_ = root;
  struct stat st {};
  if (::stat(root_.c_str(), &st) == 0) root_dev_ = st.st_dev;
  add_tree(root_, nullptr);
  return true;
}

bool FileWatch::covers(std::string_view path) const {
  if (fd_ < 0 || path.size() < root_.size() || path.substr(0, root_.size()) != root_) return false;
  return path.size() == root_.size() || path[root_.size()] == '/';
}

void FileWatch::emit(Outbox& outbox, std::string_view op, std::string_view path, std::int64_t size,
                     std::string_view from) {
  protocol::Json file{{"op", op}, {"path", path}, {"size", size}};
  if (!from.empty()) file["from"] = from;
  outbox.message(protocol::kConnectionChannel, protocol::Json{{"op", "event"}, {"file", file}});
}

// Watches dir and everything below it. With an outbox, also reports what it finds (a
// directory that appeared with content already in it).
void FileWatch::add_tree(const std::string& dir, Outbox* outbox) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  if (st.st_dev != root_dev_) return;  // another filesystem (a share): see the header
  const int wd = paths_.size() < kMaxWatches ? ::inotify_add_watch(fd_, dir.c_str(), kDirMask) : -1;
  if (wd < 0) {
    if (!warned_limit_) log_line("file watch limit reached; changes in some workspace directories are not reported");
    warned_limit_ = true;
    return;
  }
  paths_[wd] = dir;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::pair<std::string, bool>> children;
  while (dirent* entry = ::readdir(d)) {
    const std::string_view name = entry->d_name;
    if (name == "." || name == ".." || is_temp(name)) continue;
    bool is_dir = entry->d_type == DT_DIR;
    if (entry->d_type == DT_UNKNOWN) {
      struct stat child {};
      is_dir = ::fstatat(::dirfd(d), entry->d_name, &child, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(child.st_mode);
    }
    children.emplace_back(std::string(name), is_dir);
  }
  ::closedir(d);
  for (const auto& [name, is_dir] : children) {
    const std::string path = join(dir, name);
    if (outbox != nullptr) emit(*outbox, is_dir ? "mkdir" : "create", path, is_dir ? 0 : size_of(path));
    if (is_dir) add_tree(path, outbox);
  }
}

void FileWatch::rename_watches(const std::string& from, const std::string& to) {
  for (auto& [wd, path] : paths_) {
    if (path == from) path = to;
    else if (path.size() > from.size() && path.compare(0, from.size(), from) == 0 && path[from.size()] == '/')
      path = to + path.substr(from.size());
  }
}

void FileWatch::forget_tree(const std::string& dir) {
  for (auto it = paths_.begin(); it != paths_.end();) {
    const std::string& path = it->second;
    if (path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/')) {
      ::inotify_rm_watch(fd_, it->first);
      it = paths_.erase(it);
    } else {
      ++it;
    }
  }
}

bool FileWatch::watched(const std::string& dir) const {
  return std::any_of(paths_.begin(), paths_.end(), [&](const auto& entry) { return entry.second == dir; });
}

std::optional<std::chrono::steady_clock::time_point> FileWatch::deadline() const {
  if (pending_moves_.empty()) return std::nullopt;
  return pending_moves_.front().expires;
}

void FileWatch::on_time(Outbox& outbox, std::chrono::steady_clock::time_point now) {
  // Moves without a partner in time went out of the watched tree.
  while (!pending_moves_.empty() && pending_moves_.front().expires <= now) {
    const PendingMove move = pending_moves_.front();
    pending_moves_.erase(pending_moves_.begin());
    if (move.is_dir) forget_tree(move.path);
    if (!move.temp) emit(outbox, "remove", move.path, 0);
  }
}

void FileWatch::on_readable(Outbox& outbox) {
  std::vector<RawEvent> events;
  alignas(inotify_event) char buffer[64 * 1024];
  while (true) {
    const ssize_t n = ::read(fd_, buffer, sizeof(buffer));
    if (n <= 0) break;
    std::size_t at = 0;
    const auto total = static_cast<std::size_t>(n);
    while (at + sizeof(inotify_event) <= total) {
      inotify_event header{};
      std::memcpy(&header, buffer + at, sizeof(header));
      const std::size_t end = at + sizeof(inotify_event) + header.len;
      if (end > total) break;
      RawEvent e{header.wd, header.mask, header.cookie, {}};
      if (header.len > 0) e.name.assign(buffer + at + sizeof(inotify_event), strnlen(buffer + at + sizeof(inotify_event), header.len));
      events.push_back(std::move(e));
      at = end;
    }
  }

  for (std::size_t i = 0; i < events.size(); ++i) {
    const RawEvent& e = events[i];
    if (e.mask & IN_Q_OVERFLOW) {
      outbox.message(protocol::kConnectionChannel,
                     protocol::Json{{"op", "log"}, {"level", "warn"}, {"message", "file event queue overflowed; events lost"}});
      continue;
    }
    if (e.mask & IN_IGNORED) {
      paths_.erase(e.wd);
      continue;
    }
    auto dir_it = paths_.find(e.wd);
    if (dir_it == paths_.end() || e.name.empty()) continue;
    const std::string path = join(dir_it->second, e.name);
    const bool is_dir = (e.mask & IN_ISDIR) != 0;
    const bool temp = is_temp(e.name);

    if (e.mask & IN_CREATE) {
      // A directory already found by the scan of its new parent was reported there.
      if (temp || (is_dir && watched(path))) continue;
      emit(outbox, is_dir ? "mkdir" : "create", path, 0);
      if (is_dir) add_tree(path, &outbox);
    } else if (e.mask & IN_CLOSE_WRITE) {
      if (!temp) emit(outbox, "write", path, size_of(path));
    } else if (e.mask & IN_DELETE) {
      if (!temp) emit(outbox, "remove", path, 0);
    } else if (e.mask & IN_MOVED_FROM) {
      pending_moves_.push_back({e.cookie, path, is_dir, temp, std::chrono::steady_clock::now() + kMovePairWindow});
    } else if (e.mask & IN_MOVED_TO) {
      auto from = std::find_if(pending_moves_.begin(), pending_moves_.end(),
                               [&](const PendingMove& m) { return m.cookie == e.cookie; });
      if (from != pending_moves_.end()) {
        const PendingMove move = *from;
        pending_moves_.erase(from);
        if (move.is_dir) rename_watches(move.path, path);
        if (move.temp && !temp) emit(outbox, "write", path, size_of(path));  // a file.write landing
        else if (!move.temp && !temp) emit(outbox, "rename", path, is_dir ? 0 : size_of(path), move.path);
        continue;
      }
      if (temp) continue;
      emit(outbox, is_dir ? "mkdir" : "create", path, is_dir ? 0 : size_of(path));
      if (is_dir) add_tree(path, &outbox);
    }
  }
}

}  // namespace airlock::guest
