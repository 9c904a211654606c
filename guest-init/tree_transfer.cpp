// Whole-tree transfers; see tree_transfer.hpp.
#include "guest-init/tree_transfer.hpp"

#include <cerrno>
#include <cstring>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "guest-init/errors.hpp"
#include "guest-init/file_util.hpp"
#include "guest-init/file_watch.hpp"
#include "protocol/tree.hpp"

namespace airlock::guest {
namespace {

using protocol::EntryType;
using protocol::FrameType;
using protocol::Json;
using protocol::TreeCounts;
using protocol::TreeEntry;

// Opens rel (a directory, "" = root itself) beneath root without following any link.
int open_dir_beneath(int root, const std::string& rel) {
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const char* path = rel.empty() ? "." : rel.c_str();
  const long fd = ::syscall(SYS_openat2, root, path, &how, sizeof how);
  return fd < 0 ? -1 : static_cast<int>(fd);
}

std::string join(const std::string& root, const std::string& rel) {
  if (rel.empty()) return root;
  return root == "/" ? "/" + rel : root + "/" + rel;
}

// Opens (creating) the root directory of a transfer. No symlink is followed anywhere on
// the way, the root's parent included: the sandboxed user can make links in the
// workspace, and these ops run as root, so a link it planted on a path the host uploads
// to would otherwise turn the upload into a root write wherever the link points. The
// parent must exist (as with cp -r).
int open_root(const std::string& root, bool create, SessionContext ctx, std::string& error) {
  const std::string name = base_of(root);
  if (name.empty() || name == "/" || name == "." || name == "..") {
    error = protocol::make_error(protocol::error_code::invalid, "refusing " + root + " as a tree root");
    return -1;
  }
  const std::string parent = parent_of(root);
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const long parent_fd = ::syscall(SYS_openat2, AT_FDCWD, parent.c_str(), &how, sizeof how);
  if (parent_fd < 0) {
    error = errno == ELOOP ? protocol::make_error(protocol::error_code::invalid,
                                                  "a symlink is on the way to " + root + " (links are not followed)")
                           : errno_error(errno, "open " + parent);
    return -1;
  }
  const int pfd = static_cast<int>(parent_fd);
  if (create && ::mkdirat(pfd, name.c_str(), 0755) == 0) {
    ::fchmodat(pfd, name.c_str(), 0755, 0);
    struct stat st {};
    if (::fstat(pfd, &st) == 0) static_cast<void>(::fchownat(pfd, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW));
    report(ctx, "mkdir", root, 0);
  }
  const int fd = ::openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  const int err = errno;
  ::close(pfd);
  if (fd < 0) {
    error = err == ELOOP || err == ENOTDIR
                ? protocol::make_error(protocol::error_code::invalid, root + " is not a directory (or is a symlink)")
                : errno_error(err, "open " + root);
  }
  return fd;
}

class UploadSession final : public Session {
 public:
  UploadSession(std::uint32_t channel, SessionContext ctx, std::string root, int root_fd)
      : channel_(channel), ctx_(ctx), root_(std::move(root)), root_fd_(root_fd) {}
  ~UploadSession() override { abort(); }

  void on_frame(const protocol::Frame& frame) override {
    if (done_) return;
    if (frame.type == FrameType::file_data) return on_data(frame.payload);
    if (frame.type != FrameType::control) return;
    auto message = protocol::parse_control(frame.payload);
    if (!message) return fail(protocol::make_error(protocol::error_code::invalid, "not a JSON object with an op"));
    const std::string op = protocol::op_of(*message);
    if (file_fd_ >= 0) return fail(protocol::make_error(protocol::error_code::invalid, op + " before the previous file's data ended"));
    if (op == "end") return finish();
    if (op != "entry") return fail(protocol::make_error(protocol::error_code::invalid, "unexpected op '" + op + "' in an upload"));
    auto parsed = protocol::parse_entry(*message);
    if (auto* why = std::get_if<std::string>(&parsed)) return fail(protocol::make_error(protocol::error_code::invalid, *why));
    on_entry(std::get<TreeEntry>(parsed));
  }
  void abort() override {
    close_file(true);
    if (root_fd_ >= 0) ::close(root_fd_);
    root_fd_ = -1;
    done_ = true;
  }
  bool finished() const override { return done_; }

 private:
  void fail(const std::string& error) {
    abort();
    ctx_.outbox.control(channel_, error);
  }

  void close_file(bool discard) {
    if (file_fd_ >= 0) ::close(file_fd_);
    file_fd_ = -1;
    if (discard && parent_fd_ >= 0 && !temp_.empty()) ::unlinkat(parent_fd_, temp_.c_str(), 0);
    if (parent_fd_ >= 0) ::close(parent_fd_);
    parent_fd_ = -1;
    temp_.clear();
  }

  // The entry's parent, opened beneath the root; -1 with the reply sent otherwise.
  int parent_for(const TreeEntry& e) {
    const int fd = open_dir_beneath(root_fd_, protocol::parent_of_entry(e.path));
    if (fd < 0) {
      const int err = errno;
      fail(err == ELOOP || err == EXDEV
               ? protocol::make_error(protocol::error_code::invalid, "a symlink or mount point is in the way of " + join(root_, e.path))
               : errno_error(err, "open the folder of " + join(root_, e.path)));
    }
    return fd;
  }

  static void take_owner(int parent_fd, const char* name) {
    struct stat st {};
    if (::fstat(parent_fd, &st) == 0) static_cast<void>(::fchownat(parent_fd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW));
  }

  std::string temp_name() { return std::string(kTempPrefix) + "u" + std::to_string(++temp_counter_); }

  void on_entry(const TreeEntry& e) {
    if (e.path.empty()) {  // the root's own mode and time
      ::fchmod(root_fd_, e.mode);
      if (e.mod_time != 0) dir_times_.emplace_back(e.path, e.mod_time);
      return;
    }
    const int parent = parent_for(e);
    if (parent < 0) return;
    const std::string name = protocol::name_of_entry(e.path);
    const std::string full = join(root_, e.path);
    if (e.type == EntryType::dir) {
      if (::mkdirat(parent, name.c_str(), e.mode) == 0) {
        take_owner(parent, name.c_str());
        report(ctx_, "mkdir", full, 0);
        ++counts_.dirs;
      } else {
        struct stat st {};
        if (errno != EEXIST || ::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
          ::close(parent);
          return fail(protocol::make_error(protocol::error_code::invalid, full + " exists and is not a directory"));
        }
        ++counts_.dirs;
      }
      ::fchmodat(parent, name.c_str(), e.mode, 0);  // not subject to umask; name is a dir here
      if (e.mod_time != 0) dir_times_.emplace_back(e.path, e.mod_time);
      ::close(parent);
      return;
    }
    if (e.type == EntryType::symlink) {
      const std::string temp = temp_name();
      if (::symlinkat(e.target.c_str(), parent, temp.c_str()) != 0) {
        const int err = errno;
        ::close(parent);
        return fail(errno_error(err, "symlink " + full));
      }
      take_owner(parent, temp.c_str());
      if (::renameat(parent, temp.c_str(), parent, name.c_str()) != 0) {
        const int err = errno;
        ::unlinkat(parent, temp.c_str(), 0);
        ::close(parent);
        return fail(errno_error(err, "create " + full));
      }
      report(ctx_, "create", full, 0);
      ++counts_.symlinks;
      ::close(parent);
      return;
    }
    temp_ = temp_name();
    file_fd_ = ::openat(parent, temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (file_fd_ < 0) {
      const int err = errno;
      temp_.clear();
      ::close(parent);
      return fail(errno_error(err, "create " + full));
    }
    parent_fd_ = parent;
    take_owner(parent, temp_.c_str());
    file_ = e;
    received_ = 0;
  }

  void on_data(std::string_view bytes) {
    if (file_fd_ < 0) return fail(protocol::make_error(protocol::error_code::invalid, "file data outside a file entry"));
    if (bytes.empty()) return end_file();
    received_ += bytes.size();
    if (received_ > protocol::kMaxEntrySize) return fail(protocol::make_error(protocol::error_code::too_large, "files are limited to 1 GiB"));
    while (!bytes.empty()) {
      const ssize_t n = ::write(file_fd_, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail(errno_error(errno, "write " + join(root_, file_.path)));
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  void end_file() {
    const std::string full = join(root_, file_.path);
    ::fchmod(file_fd_, file_.mode);
    if (file_.mod_time != 0) {
      const timespec times[2] = {{file_.mod_time, 0}, {file_.mod_time, 0}};
      ::futimens(file_fd_, times);
    }
    if (::close(file_fd_) != 0) {
      file_fd_ = -1;
      return fail(errno_error(errno, "close " + full));
    }
    file_fd_ = -1;
    if (::renameat(parent_fd_, temp_.c_str(), parent_fd_, protocol::name_of_entry(file_.path).c_str()) != 0) {
      const int err = errno;
      close_file(true);
      return fail(err == EISDIR || err == ENOTEMPTY || err == EEXIST
                      ? protocol::make_error(protocol::error_code::invalid, full + " is a directory")
                      : errno_error(err, "rename into " + full));
    }
    temp_.clear();
    close_file(false);
    report(ctx_, "write", full, static_cast<std::int64_t>(received_));
    ++counts_.files;
    counts_.bytes += received_;
  }

  void finish() {
    // Children are written: directory times can be set now, deepest first.
    for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
      const int fd = open_dir_beneath(root_fd_, it->first);
      if (fd < 0) continue;
      const timespec times[2] = {{it->second, 0}, {it->second, 0}};
      ::utimensat(fd, "", times, AT_EMPTY_PATH);
      ::close(fd);
    }
    Json ok = protocol::counts_json(counts_);
    ok["op"] = "ok";
    abort();
    ctx_.outbox.message(channel_, ok);
  }

  std::uint32_t channel_;
  SessionContext ctx_;
  std::string root_;
  int root_fd_;
  bool done_ = false;
  int file_fd_ = -1;
  int parent_fd_ = -1;
  std::string temp_;
  TreeEntry file_;
  std::uint64_t received_ = 0;
  std::uint64_t temp_counter_ = 0;
  std::vector<std::pair<std::string, std::int64_t>> dir_times_;
  TreeCounts counts_;
};

class DownloadSession final : public Session {
 public:
  DownloadSession(std::uint32_t channel, SessionContext ctx, std::string root, int root_fd)
      : channel_(channel), ctx_(ctx), root_(std::move(root)) {
    struct stat st {};
    ::fstat(root_fd, &st);
    TreeEntry e;
    e.type = EntryType::dir;
    e.mode = st.st_mode & 0777;
    e.mod_time = st.st_mtim.tv_sec;
    ctx_.outbox.message(channel_, protocol::entry_message(e));
    push(root_fd, "");
  }
  ~DownloadSession() override { abort(); }

  void on_frame(const protocol::Frame& frame) override {
    // The host gave up (its client went away): stop walking, end with an error.
    if (done_ || frame.type != FrameType::control) return;
    const auto message = protocol::parse_control(frame.payload);
    if (message && protocol::op_of(*message) == "cancel") {
      if (file_fd_ >= 0) ctx_.outbox.data(FrameType::file_data, channel_, {});
      abort();
      ctx_.outbox.control(channel_, protocol::make_error(protocol::error_code::invalid, "cancelled"));
    }
  }
  bool has_work() const override { return !done_ && !ctx_.outbox.over_cap(); }
  void work() override {
    // A bounded amount per turn, so other sessions and the port get their share.
    for (int step = 0; step < 64 && !done_ && !ctx_.outbox.over_cap(); ++step) {
      if (file_fd_ >= 0) {
        stream_file();
      } else {
        next_entry();
      }
    }
  }
  void abort() override {
    if (file_fd_ >= 0) ::close(file_fd_);
    file_fd_ = -1;
    for (auto& level : stack_) ::closedir(level.dir);
    stack_.clear();
    done_ = true;
  }
  bool finished() const override { return done_; }

 private:
  struct Level {
    DIR* dir;
    std::string rel;
  };

  void push(int fd, std::string rel) {
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      ++counts_.skipped;
      return;
    }
    stack_.push_back({d, std::move(rel)});
  }

  void stream_file() {
    std::string chunk(protocol::kMaxPayload, '\0');
    const ssize_t n = ::read(file_fd_, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) {  // end of file (or a read error: the receiver gets what was read)
      ctx_.outbox.data(FrameType::file_data, channel_, {});
      ::close(file_fd_);
      file_fd_ = -1;
      return;
    }
    chunk.resize(static_cast<std::size_t>(n));
    counts_.bytes += chunk.size();
    ctx_.outbox.data(FrameType::file_data, channel_, chunk);
  }

  void next_entry() {
    if (stack_.empty()) {
      Json end = protocol::counts_json(counts_);
      end["op"] = "end";
      ctx_.outbox.message(channel_, end);
      done_ = true;
      return;
    }
    Level& level = stack_.back();
    errno = 0;
    dirent* d = ::readdir(level.dir);
    if (d == nullptr) {
      ::closedir(level.dir);
      stack_.pop_back();
      return;
    }
    const std::string name = d->d_name;
    if (name == "." || name == "..") return;
    const int dirfd = ::dirfd(level.dir);
    const std::string rel = level.rel.empty() ? name : level.rel + "/" + name;
    if (!protocol::is_safe_relative_path(rel)) {
      ++counts_.skipped;
      return;
    }
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      ++counts_.skipped;
      return;
    }
    TreeEntry e;
    e.path = rel;
    e.mode = st.st_mode & 0777;
    e.mod_time = st.st_mtim.tv_sec;
    if (S_ISDIR(st.st_mode)) {
      if (stack_.size() >= protocol::kMaxTreeDepth) {
        ++counts_.skipped;
        return;
      }
      const int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        ++counts_.skipped;
        return;
      }
      e.type = EntryType::dir;
      ctx_.outbox.message(channel_, protocol::entry_message(e));
      ++counts_.dirs;
      push(fd, rel);
    } else if (S_ISREG(st.st_mode)) {
      const int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) {
        ++counts_.skipped;
        return;
      }
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      e.type = EntryType::file;
      e.size = static_cast<std::uint64_t>(st.st_size);
      ctx_.outbox.message(channel_, protocol::entry_message(e));
      ++counts_.files;
      file_fd_ = fd;
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(protocol::kMaxPathBytes + 1, '\0');
      const ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
      if (n <= 0 || static_cast<std::size_t>(n) > protocol::kMaxPathBytes) {
        ++counts_.skipped;
        return;
      }
      target.resize(static_cast<std::size_t>(n));
      e.type = EntryType::symlink;
      e.target = target;
      ctx_.outbox.message(channel_, protocol::entry_message(e));
      ++counts_.symlinks;
    } else {
      ++counts_.skipped;  // devices, fifos, sockets
    }
  }

  std::uint32_t channel_;
  SessionContext ctx_;
  std::string root_;
  std::vector<Level> stack_;
  int file_fd_ = -1;
  bool done_ = false;
  TreeCounts counts_;
};

}  // namespace

std::unique_ptr<Session> start_upload(std::uint32_t channel, const std::string& root, SessionContext ctx) {
  std::string error;
  const int fd = open_root(root, true, ctx, error);
  if (fd < 0) {
    ctx.outbox.control(channel, error);
    return nullptr;
  }
  return std::make_unique<UploadSession>(channel, ctx, root, fd);
}

std::unique_ptr<Session> start_download(std::uint32_t channel, const std::string& root, SessionContext ctx) {
  std::string error;
  const int fd = open_root(root, false, ctx, error);
  if (fd < 0) {
    ctx.outbox.control(channel, error);
    return nullptr;
  }
  return std::make_unique<DownloadSession>(channel, ctx, root, fd);
}

}  // namespace airlock::guest
