// File operations requested by the host (see files.hpp).
#include "guest-init/files.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest-init/errors.hpp"
#include "guest-init/file_util.hpp"
#include "guest-init/file_watch.hpp"
#include "guest-init/tree_transfer.hpp"

namespace airlock::guest {
namespace {

using protocol::FrameType;
using protocol::Json;

constexpr std::size_t kListReplyBudget = protocol::kMaxPayload - 4096;
constexpr int kMaxRemoveDepth = 512;

Json stat_json(const std::string& name, const struct stat& st) {
  const char* type = S_ISDIR(st.st_mode) ? "dir" : S_ISREG(st.st_mode) ? "file" : S_ISLNK(st.st_mode) ? "symlink" : "other";
  return Json{{"name", name},
              {"size", static_cast<std::int64_t>(st.st_size)},
              {"mode", st.st_mode & 07777},
              {"mod_time", static_cast<std::int64_t>(st.st_mtim.tv_sec)},
              {"is_dir", S_ISDIR(st.st_mode)},
              {"type", type}};
}

// Removes name inside dirfd, recursing into directories without following symlinks.
int remove_tree(int dirfd, const char* name, int depth) {
  if (::unlinkat(dirfd, name, 0) == 0) return 0;
  if (errno != EISDIR && errno != EPERM) return errno;
  if (depth > kMaxRemoveDepth) return ELOOP;
  const int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    const int err = errno;
    ::close(fd);
    return err;
  }
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(d)) {
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) names.emplace_back(entry->d_name);
  }
  int err = 0;
  for (const auto& child : names) {
    err = remove_tree(::dirfd(d), child.c_str(), depth + 1);
    if (err != 0) break;
  }
  ::closedir(d);
  if (err != 0) return err;
  return ::unlinkat(dirfd, name, AT_REMOVEDIR) == 0 ? 0 : errno;
}

bool is_cancel(const protocol::Frame& frame) {
  const auto message = protocol::parse_control(frame.payload);
  return message && protocol::op_of(*message) == "cancel";
}

// file.write: receives file_data frames into a temporary file.
class FileWriteSession final : public Session {
 public:
  FileWriteSession(std::uint32_t channel, SessionContext ctx, std::string path, std::string temp, int fd,
                   std::optional<std::uint64_t> expected, mode_t mode)
      : channel_(channel), ctx_(ctx), path_(std::move(path)), temp_(std::move(temp)), fd_(fd),
        expected_(expected), mode_(mode) {}
  ~FileWriteSession() override { abort(); }

  void on_frame(const protocol::Frame& frame) override {
    if (fd_ >= 0 && frame.type == FrameType::control && is_cancel(frame)) {
      return fail(protocol::make_error(protocol::error_code::invalid, "cancelled"));
    }
    if (fd_ < 0 || frame.type != FrameType::file_data) return;
    if (frame.payload.empty()) return finish();
    received_ += frame.payload.size();
    if (received_ > kMaxFileSize || (expected_ && received_ > *expected_)) {
      return fail(protocol::make_error(protocol::error_code::too_large, "more data than the declared size or 1 GiB"));
    }
    std::string_view rest = frame.payload;
    while (!rest.empty()) {
      const ssize_t n = ::write(fd_, rest.data(), rest.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail(errno_error(errno, "write " + path_));
      }
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  void abort() override {
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
    ::unlink(temp_.c_str());
  }
  bool finished() const override { return fd_ < 0; }

 private:
  void fail(const std::string& error) {
    abort();
    ctx_.outbox.control(channel_, error);
  }
  void finish() {
    if (expected_ && received_ != *expected_) {
      return fail(protocol::make_error(protocol::error_code::invalid,
                                       "received " + std::to_string(received_) + " bytes, declared " + std::to_string(*expected_)));
    }
    if (::fchmod(fd_, mode_) != 0) return fail(errno_error(errno, "chmod " + path_));
    if (::close(fd_) != 0) {
      fd_ = -1;
      const int err = errno;
      ::unlink(temp_.c_str());
      ctx_.outbox.control(channel_, errno_error(err, "close " + path_));
      return;
    }
    fd_ = -1;
    if (::rename(temp_.c_str(), path_.c_str()) != 0) {
      const int err = errno;
      ::unlink(temp_.c_str());
      ctx_.outbox.control(channel_, errno_error(err, "rename into " + path_));
      return;
    }
    report(ctx_, "write", path_, static_cast<std::int64_t>(received_));
    ctx_.outbox.message(channel_, Json{{"op", "ok"}, {"size", received_}});
  }

  std::uint32_t channel_;
  SessionContext ctx_;
  std::string path_;
  std::string temp_;
  int fd_;
  std::optional<std::uint64_t> expected_;
  mode_t mode_;
  std::uint64_t received_ = 0;
};

// file.read: streams a file out while the outbox has room.
class FileReadSession final : public Session {
 public:
  FileReadSession(std::uint32_t channel, SessionContext ctx, int fd) : channel_(channel), ctx_(ctx), fd_(fd) {}
  ~FileReadSession() override { abort(); }
  void on_frame(const protocol::Frame& frame) override {
    // The host gave up (its client went away): stop reading; the empty frame ends it.
    if (fd_ >= 0 && frame.type == FrameType::control && is_cancel(frame)) {
      ctx_.outbox.data(FrameType::file_data, channel_, {});
      abort();
    }
  }
  bool has_work() const override { return fd_ >= 0 && !ctx_.outbox.over_cap(); }
  void work() override {
    if (fd_ < 0) return;
    std::string chunk(protocol::kMaxPayload, '\0');
    const ssize_t n = ::read(fd_, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) {
      // A read error mid-stream cannot become an error reply any more (ok was sent):
      // end the stream; the host sees fewer bytes than the size it was told.
      ctx_.outbox.data(FrameType::file_data, channel_, {});
      abort();
      return;
    }
    chunk.resize(static_cast<std::size_t>(n));
    ctx_.outbox.data(FrameType::file_data, channel_, chunk);
  }
  void abort() override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool finished() const override { return fd_ < 0; }

 private:
  std::uint32_t channel_;
  SessionContext ctx_;
  int fd_;
};

std::optional<mode_t> mode_arg(const Json& request, mode_t def) {
  if (!request.contains("mode") || request.at("mode").is_null()) return def;
  const auto m = protocol::get_int(request, "mode");
  if (!m || *m < 0 || *m > 07777) return std::nullopt;
  return static_cast<mode_t>(*m);
}

bool bool_arg(const Json& request, std::string_view key, bool def) { return protocol::get_bool(request, key).value_or(def); }

// Sends a refusal on the channel; the request ends there (no session).
std::unique_ptr<Session> refuse(SessionContext ctx, std::uint32_t channel, const std::string& error) {
  ctx.outbox.control(channel, error);
  return nullptr;
}

std::unique_ptr<Session> start_write(std::uint32_t channel, const Json& request, const std::string& path, SessionContext ctx) {
  const auto mode = mode_arg(request, 0644);
  if (!mode) return refuse(ctx, channel, protocol::make_error(protocol::error_code::invalid, "mode must be 0..07777"));
  std::optional<std::uint64_t> expected;
  if (request.contains("size") && !request.at("size").is_null()) {
    const auto size = protocol::get_int(request, "size");
    if (!size || *size < 0) return refuse(ctx, channel, protocol::make_error(protocol::error_code::invalid, "size must be a non-negative integer"));
    if (static_cast<std::uint64_t>(*size) > kMaxFileSize)
      return refuse(ctx, channel, protocol::make_error(protocol::error_code::too_large, "files are limited to 1 GiB"));
    expected = static_cast<std::uint64_t>(*size);
  }
  const std::string dir = parent_of(path);
  if (bool_arg(request, "parents", true)) {
    if (const int err = make_dirs(dir, 0755, ctx); err != 0) return refuse(ctx, channel, errno_error(err, "create " + dir));
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return refuse(ctx, channel, protocol::make_error(protocol::error_code::invalid, path + " is a directory"));
  static std::uint64_t counter = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::string temp = dir + (dir == "/" ? "" : "/") + std::string(kTempPrefix) + std::to_string(++counter);
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) return refuse(ctx, channel, errno_error(errno, "create " + path));
    inherit_owner(path, fd);
    return std::make_unique<FileWriteSession>(channel, ctx, path, temp, fd, expected, *mode);
  }
  return refuse(ctx, channel, protocol::make_error(protocol::error_code::busy, "no free temporary name"));
}

std::unique_ptr<Session> start_read(std::uint32_t channel, const std::string& path, SessionContext ctx) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return refuse(ctx, channel, errno_error(errno, "open " + path));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return refuse(ctx, channel, protocol::make_error(protocol::error_code::invalid, path + " is not a regular file"));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  ctx.outbox.message(channel, Json{{"op", "ok"}, {"size", static_cast<std::int64_t>(st.st_size)}, {"mode", st.st_mode & 07777}});
  return std::make_unique<FileReadSession>(channel, ctx, fd);
}

// Entries from the offset-th name on (sorted), as many as fit one reply.
void list_dir(std::uint32_t channel, const std::string& path, std::size_t offset, SessionContext ctx) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return ctx.outbox.control(channel, errno_error(errno, "list " + path));
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(d)) {
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) names.emplace_back(entry->d_name);
  }
  std::sort(names.begin(), names.end());
  Json entries = Json::array();
  std::size_t budget = 0;
  bool truncated = false;
  std::size_t i = std::min(offset, names.size());
  for (; i < names.size(); ++i) {
    const std::string& name = names[i];
    struct stat st {};
    if (::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    Json entry = stat_json(name, st);
    budget += name.size() * 6 + 128;  // worst-case escaping of the name plus fixed fields
    if (budget > kListReplyBudget) {
      truncated = true;
      break;
    }
    entries.push_back(std::move(entry));
  }
  ::closedir(d);
  Json ok{{"op", "ok"}, {"entries", std::move(entries)}, {"truncated", truncated}};
  if (truncated) ok["next_offset"] = i;  // the next page: file.list again with this offset
  ctx.outbox.message(channel, ok);
}

}  // namespace

std::unique_ptr<Session> handle_file_request(const std::string& op, std::uint32_t channel, const Json& request,
                                             SessionContext ctx) {
  auto reply = [&](const std::string& m) { ctx.outbox.control(channel, m); };
  const auto path_arg = protocol::get_string(request, "path");
  if (!path_arg || !valid_abs_path(*path_arg)) {
    reply(protocol::make_error(protocol::error_code::invalid, "path must be an absolute path"));
    return nullptr;
  }
  const std::string& path = *path_arg;

  if (op == "file.write") return start_write(channel, request, path, ctx);
  if (op == "file.read") return start_read(channel, path, ctx);
  if (op == "file.upload") return start_upload(channel, path, ctx);
  if (op == "file.download") return start_download(channel, path, ctx);
  if (op == "file.list") {
    const auto offset = protocol::get_int(request, "offset").value_or(0);
    list_dir(channel, path, static_cast<std::size_t>(std::max<std::int64_t>(0, offset)), ctx);
  } else if (op == "file.stat") {
    struct stat st {};
    const bool follow = !bool_arg(request, "nofollow", false);
    if ((follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0) {
      reply(errno_error(errno, "stat " + path));
    } else {
      Json ok = stat_json(base_of(path), st);
      ok["op"] = "ok";
      ctx.outbox.message(channel, ok);
    }
  } else if (op == "file.mkdir") {
    const auto mode = mode_arg(request, 0755);
    if (!mode) {
      reply(protocol::make_error(protocol::error_code::invalid, "mode must be 0..07777"));
    } else if (bool_arg(request, "parents", true)) {
      const int err = make_dirs(path, *mode, ctx);
      reply(err == 0 ? protocol::make_ok() : errno_error(err, "mkdir " + path));
    } else if (::mkdir(path.c_str(), *mode) != 0) {
      reply(errno_error(errno, "mkdir " + path));
    } else {
      ::chmod(path.c_str(), *mode);
      inherit_owner(path);
      report(ctx, "mkdir", path, 0);
      reply(protocol::make_ok());
    }
  } else if (op == "file.remove") {
    if (path.find_first_not_of('/') == std::string::npos) {
      reply(protocol::make_error(protocol::error_code::invalid, "refusing to remove /"));
    } else if (bool_arg(request, "recursive", false)) {
      const int err = remove_tree(AT_FDCWD, path.c_str(), 0);
      if (err == 0) report(ctx, "remove", path, 0);
      reply(err == 0 ? protocol::make_ok() : errno_error(err, "remove " + path));
    } else {
      int rc = ::unlink(path.c_str());
      if (rc != 0 && (errno == EISDIR || errno == EPERM)) rc = ::rmdir(path.c_str());
      if (rc == 0) report(ctx, "remove", path, 0);
      reply(rc == 0 ? protocol::make_ok() : errno_error(errno, "remove " + path));
    }
  } else {
    reply(protocol::make_error(protocol::error_code::invalid, "unknown op " + op));
  }
  return nullptr;
}

}  // namespace airlock::guest
