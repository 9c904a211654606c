// Host-side tree reading and writing; see tree_transfer.hpp.
#include "runtime/vm/tree_transfer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace airlock::runtime {

namespace fs = std::filesystem;
using protocol::EntryType;
using protocol::TreeEntry;

namespace {

std::string errno_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

int open_dir_beneath(int root, const std::string& rel, int flags) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_DIRECTORY | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const long fd = ::syscall(SYS_openat2, root, rel.empty() ? "." : rel.c_str(), &how, sizeof how);
  return fd < 0 ? -1 : static_cast<int>(fd);
}

TreeEntry entry_of(const struct stat& st, std::string rel) {
  TreeEntry e;
  e.path = std::move(rel);
  e.mode = st.st_mode & 0777;
  e.mod_time = st.st_mtim.tv_sec;
  return e;
}

}  // namespace

// ---- reading -----------------------------------------------------------------------------

struct TreeReader::Level {
  DIR* dir = nullptr;
  std::string rel;
  ~Level() {
    if (dir != nullptr) ::closedir(dir);
  }
};

Result<std::unique_ptr<TreeReader>> TreeReader::open(const fs::path& root) {
  const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error{errno_text(root.string(), errno)};
  struct stat st {};
  ::fstat(fd, &st);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    const int err = errno;
    ::close(fd);
    return Error{errno_text(root.string(), err)};
  }
  std::unique_ptr<TreeReader> reader(new TreeReader());
  reader->root_ = entry_of(st, "");
  reader->root_.type = EntryType::dir;
  auto level = std::make_unique<Level>();
  level->dir = dir;
  reader->stack_.push_back(std::move(level));
  return reader;
}

TreeReader::~TreeReader() {
  if (file_fd_ >= 0) ::close(file_fd_);
}

std::optional<TreeEntry> TreeReader::next() {
  if (!root_sent_) {
    root_sent_ = true;
    return root_;
  }
  if (file_fd_ >= 0) {  // the caller moved on without reading to the end
    ::close(file_fd_);
    file_fd_ = -1;
  }
  while (!stack_.empty()) {
    Level& level = *stack_.back();
    dirent* d = ::readdir(level.dir);
    if (d == nullptr) {
      stack_.pop_back();
      continue;
    }
    const std::string name = d->d_name;
    if (name == "." || name == "..") continue;
    const std::string rel = level.rel.empty() ? name : level.rel + "/" + name;
    const int dirfd = ::dirfd(level.dir);
    struct stat st {};
    if (!protocol::is_safe_relative_path(rel) || ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      ++counts_.skipped;
      continue;
    }
    TreeEntry e = entry_of(st, rel);
    if (S_ISDIR(st.st_mode)) {
      if (stack_.size() >= protocol::kMaxTreeDepth) {
        ++counts_.skipped;
        continue;
      }
      const int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      DIR* dir = fd >= 0 ? ::fdopendir(fd) : nullptr;
      if (dir == nullptr) {
        if (fd >= 0) ::close(fd);
        ++counts_.skipped;
        continue;
      }
      auto child = std::make_unique<Level>();
      child->dir = dir;
      child->rel = rel;
      stack_.push_back(std::move(child));
      e.type = EntryType::dir;
      ++counts_.dirs;
      return e;
    }
    if (S_ISREG(st.st_mode)) {
      const int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) {
        ++counts_.skipped;
        continue;
      }
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      file_fd_ = fd;
      e.type = EntryType::file;
      e.size = static_cast<std::uint64_t>(st.st_size);
      ++counts_.files;
      return e;
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(protocol::kMaxPathBytes + 1, '\0');
      const ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
      if (n <= 0 || static_cast<std::size_t>(n) > protocol::kMaxPathBytes) {
        ++counts_.skipped;
        continue;
      }
      target.resize(static_cast<std::size_t>(n));
      e.type = EntryType::symlink;
      e.target = std::move(target);
      ++counts_.symlinks;
      return e;
    }
    ++counts_.skipped;  // devices, fifos, sockets
  }
  return std::nullopt;
}

std::size_t TreeReader::read(char* buffer, std::size_t size) {
  if (file_fd_ < 0) return 0;
  for (;;) {
    const ssize_t n = ::read(file_fd_, buffer, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(file_fd_);
      file_fd_ = -1;
      return 0;
    }
    counts_.bytes += static_cast<std::uint64_t>(n);
    return static_cast<std::size_t>(n);
  }
}

// ---- writing -----------------------------------------------------------------------------

Result<std::unique_ptr<TreeWriter>> TreeWriter::open(const fs::path& root) {
  const fs::path parent = root.has_parent_path() ? root.parent_path() : fs::path(".");
  const std::string name = root.filename().string();
  if (name.empty() || name == "." || name == "..") return Error{root.string() + ": not a folder name to create"};
  const int parent_fd = ::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (parent_fd < 0) return Error{errno_text(parent.string(), errno)};
  ::mkdirat(parent_fd, name.c_str(), 0700);  // EEXIST: a folder already there is filled
  const int fd = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  const int err = errno;
  ::close(parent_fd);
  if (fd < 0) {
    if (err == ELOOP || err == ENOTDIR) return Error{root.string() + ": exists and is not a folder (or is a symlink)"};
    return Error{errno_text(root.string(), err)};
  }
  std::unique_ptr<TreeWriter> writer(new TreeWriter());
  writer->root_path_ = root;
  writer->root_fd_ = fd;
  return writer;
}

TreeWriter::~TreeWriter() {
  discard_file();
  if (root_fd_ >= 0) ::close(root_fd_);
}

void TreeWriter::discard_file() {
  if (file_fd_ >= 0) ::close(file_fd_);
  file_fd_ = -1;
  if (parent_fd_ >= 0) {
    if (!temp_.empty()) ::unlinkat(parent_fd_, temp_.c_str(), 0);
    ::close(parent_fd_);
  }
  parent_fd_ = -1;
  temp_.clear();
}

Result<int> TreeWriter::parent_of_entry(const std::string& rel) {
  const int fd = open_dir_beneath(root_fd_, protocol::parent_of_entry(rel), O_PATH);
  if (fd < 0) {
    const int err = errno;
    const std::string where = (root_path_ / rel).string();
    if (err == ELOOP || err == EXDEV) return Error{where + ": a symlink is in the way (links are never followed)"};
    return Error{errno_text("the folder of " + where, err)};
  }
  return fd;
}

Result<bool> TreeWriter::on_entry(const TreeEntry& e) {
  if (file_fd_ >= 0) return Error{"an entry arrived before the previous file's data ended"};
  if (!protocol::is_safe_relative_path(e.path)) return Error{"unsafe path in the tree: " + e.path.substr(0, 256)};
  if (e.path.empty()) {
    if (e.type != EntryType::dir) return Error{"the tree's root must be a folder"};
    dirs_.push_back({"", e.mode, e.mod_time});
    return true;
  }
  Result<int> parent = parent_of_entry(e.path);
  if (!parent) return Error{parent.error()};
  const std::string name = protocol::name_of_entry(e.path);
  const std::string where = (root_path_ / e.path).string();
  if (e.type == EntryType::dir) {
    if (::mkdirat(*parent, name.c_str(), 0700) != 0) {
      struct stat st {};
      if (errno != EEXIST || ::fstatat(*parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
        ::close(*parent);
        return Error{where + ": exists and is not a folder"};
      }
    }
    ::close(*parent);
    dirs_.push_back({e.path, e.mode, e.mod_time});
    ++counts_.dirs;
    return true;
  }
  const std::string temp = ".airlock-part-" + std::to_string(::getpid()) + "-" + std::to_string(++temp_counter_);
  if (e.type == EntryType::symlink) {
    int rc = ::symlinkat(e.target.c_str(), *parent, temp.c_str());
    if (rc == 0) rc = ::renameat(*parent, temp.c_str(), *parent, name.c_str());
    const int err = errno;
    if (rc != 0) ::unlinkat(*parent, temp.c_str(), 0);
    ::close(*parent);
    if (rc != 0) return Error{errno_text(where, err)};
    ++counts_.symlinks;
    return true;
  }
  file_fd_ = ::openat(*parent, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (file_fd_ < 0) {
    const int err = errno;
    ::close(*parent);
    return Error{errno_text(where, err)};
  }
  parent_fd_ = *parent;
  temp_ = temp;
  file_ = e;
  received_ = 0;
  return true;
}

Result<bool> TreeWriter::on_data(std::string_view bytes) {
  if (file_fd_ < 0) return Error{"file data outside a file entry"};
  const std::string where = (root_path_ / file_.path).string();
  if (bytes.empty()) {
    ::fchmod(file_fd_, file_.mode);
    if (file_.mod_time != 0) {
      const timespec times[2] = {{file_.mod_time, 0}, {file_.mod_time, 0}};
      ::futimens(file_fd_, times);
    }
    const int rc = ::close(file_fd_);
    file_fd_ = -1;
    if (rc != 0 || ::renameat(parent_fd_, temp_.c_str(), parent_fd_, protocol::name_of_entry(file_.path).c_str()) != 0) {
      const int err = errno;
      discard_file();
      return Error{err == EISDIR || err == ENOTEMPTY || err == EEXIST ? where + ": a folder is in the way"
                                                                       : errno_text(where, err)};
    }
    temp_.clear();
    discard_file();
    ++counts_.files;
    counts_.bytes += received_;
    return true;
  }
  received_ += bytes.size();
  if (received_ > protocol::kMaxEntrySize) {
    discard_file();
    return Error{where + ": more than 1 GiB"};
  }
  while (!bytes.empty()) {
    const ssize_t n = ::write(file_fd_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      discard_file();
      return Error{errno_text(where, err)};
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

Result<protocol::TreeCounts> TreeWriter::finish() {
  if (file_fd_ >= 0) return Error{"the tree ended in the middle of a file"};
  // Deepest first: a folder's time changes while its children are written, and a
  // read-only folder could not take children after its mode is set.
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    const int fd = open_dir_beneath(root_fd_, it->rel, O_RDONLY);
    if (fd < 0) continue;
    ::fchmod(fd, it->mode);
    if (it->mod_time != 0) {
      const timespec times[2] = {{it->mod_time, 0}, {it->mod_time, 0}};
      ::futimens(fd, times);
    }
    ::close(fd);
  }
  return counts_;
}

}  // namespace airlock::runtime
