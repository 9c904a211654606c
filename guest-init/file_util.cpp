// Shared helpers of the host's file operations; see file_util.hpp.
#include "guest-init/file_util.hpp"

#include <cerrno>
#include <climits>

#include <sys/stat.h>
#include <unistd.h>

#include "guest-init/file_watch.hpp"

namespace airlock::guest {

bool valid_abs_path(const std::string& path) {
  return !path.empty() && path.front() == '/' && path.size() < PATH_MAX && path.find('\0') == std::string::npos;
}

std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == 0 || slash == std::string::npos) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const auto slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

void report(SessionContext ctx, std::string_view op, const std::string& path, std::int64_t size) {
  if (ctx.watch == nullptr || !ctx.watch->covers(path)) FileWatch::emit(ctx.outbox, op, path, size);
}

void inherit_owner(const std::string& path, int fd) {
  struct stat parent {};
  if (::stat(parent_of(path).c_str(), &parent) != 0) return;
  // Best effort: a failure leaves root as the owner, which is still a working file.
  const int rc = fd >= 0 ? ::fchown(fd, parent.st_uid, parent.st_gid) : ::lchown(path.c_str(), parent.st_uid, parent.st_gid);
  static_cast<void>(rc);
}

int make_dirs(const std::string& path, mode_t mode, SessionContext ctx) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  if (path == "/") return 0;
  if (const int err = make_dirs(parent_of(path), 0755, ctx); err != 0) return err;
  if (::mkdir(path.c_str(), mode) != 0) return errno == EEXIST ? 0 : errno;
  ::chmod(path.c_str(), mode);  // not subject to umask
  inherit_owner(path);
  report(ctx, "mkdir", path, 0);
  return 0;
}

}  // namespace airlock::guest
