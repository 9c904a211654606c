// Mounts, module loading and the root switch (see boot.hpp).
#include "guest-init/boot.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "guest-init/log.hpp"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

namespace airlock::guest {
namespace {

constexpr const char* kNewRoot = "/newroot";
constexpr std::chrono::seconds kDiskWait{20};

bool do_mount(const char* source, const char* target, const char* type, unsigned long flags,
              const char* options) {
  ::mkdir(target, 0755);
  if (::mount(source, target, type, flags, options) == 0) return true;
  log_errno(std::string("mount ") + type + " on " + target, errno);
  return false;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// mkdir -p with the given mode for created components.
void make_dirs(const std::string& path, mode_t mode) {
  for (std::size_t at = 1; at <= path.size(); ++at) {
    if (at == path.size() || path[at] == '/') ::mkdir(path.substr(0, at).c_str(), mode);
  }
}

// Deletes everything on the initramfs (same device as "/"), except the new root.
void delete_tree(int dirfd, dev_t root_dev, int depth) {
  if (depth > 64) return;
  DIR* d = ::fdopendir(dirfd);
  if (d == nullptr) {
    ::close(dirfd);
    return;
  }
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(d)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  for (const auto& name : names) {
    struct stat st {};
    if (::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != root_dev) continue;
    if (S_ISDIR(st.st_mode)) {
      if (depth == 0 && name == std::string(kNewRoot).substr(1)) continue;
      const int child = ::openat(::dirfd(d), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child >= 0) delete_tree(child, root_dev, depth + 1);
      ::unlinkat(::dirfd(d), name.c_str(), AT_REMOVEDIR);
    } else {
      ::unlinkat(::dirfd(d), name.c_str(), 0);
    }
  }
  ::closedir(d);
}

}  // namespace

bool early_mounts() {
  bool ok = do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  ok = do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) && ok;
  ok = do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) && ok;
  const int console = ::open("/dev/console", O_RDWR | O_NOCTTY);
  if (console >= 0) {
    for (int fd = 0; fd <= 2; ++fd)
      if (console != fd) ::dup2(console, fd);
    if (console > 2) ::close(console);
  }
  return ok;
}

void load_modules(const char* list_path) {
  std::ifstream list(list_path);
  std::string path;
  while (std::getline(list, path)) {
    if (path.empty() || path.front() == '#') continue;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      log_errno("open module " + path, errno);
      continue;
    }
    const bool compressed = ends_with(path, ".xz") || ends_with(path, ".zst") || ends_with(path, ".gz");
    const long rc = ::syscall(SYS_finit_module, fd, "", compressed ? MODULE_INIT_COMPRESSED_FILE : 0);
    if (rc != 0 && errno != EEXIST) log_errno("load module " + path, errno);
    ::close(fd);
  }
}

bool switch_root(const char* device, const char* fstype) {
  const auto until = std::chrono::steady_clock::now() + kDiskWait;
  struct stat st {};
  while (::stat(device, &st) != 0) {
    if (std::chrono::steady_clock::now() >= until) {
      log_line(std::string("root device ") + device + " did not appear");
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!do_mount(device, kNewRoot, fstype, MS_NOATIME, nullptr)) return false;
  for (const char* dir : {"/dev", "/proc", "/sys"}) {
    const std::string target = std::string(kNewRoot) + dir;
    ::mkdir(target.c_str(), 0755);
    if (::mount(dir, target.c_str(), nullptr, MS_MOVE, nullptr) != 0) {
      log_errno(std::string("move ") + dir, errno);
      return false;
    }
  }
  struct stat root {};
  if (::stat("/", &root) == 0) {
    const int fd = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) delete_tree(fd, root.st_dev, 0);
  }
  if (::chdir(kNewRoot) != 0 || ::mount(".", "/", nullptr, MS_MOVE, nullptr) != 0 || ::chroot(".") != 0 ||
      ::chdir("/") != 0) {
    log_errno("switch root", errno);
    return false;
  }
  return true;
}

void late_mounts() {
  ::mkdir("/dev/pts", 0755);
  do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  // /dev/ptmx from devtmpfs resolves to the devpts instance at /dev/pts; only replace it
  // when it is missing.
  struct stat st {};
  if (::lstat("/dev/ptmx", &st) != 0) ::symlink("pts/ptmx", "/dev/ptmx");
  do_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  do_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  do_mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  ::symlink("/proc/self/fd", "/dev/fd");
  ::symlink("/proc/self/fd/0", "/dev/stdin");
  ::symlink("/proc/self/fd/1", "/dev/stdout");
  ::symlink("/proc/self/fd/2", "/dev/stderr");
}

void configure_host(const BootConfig& config) {
  if (::sethostname(config.hostname.data(), config.hostname.size()) != 0) log_errno("sethostname", errno);
  // The rootfs is the VM's own copy-on-write disk, so these edits stay inside the VM.
  std::ofstream("/etc/hostname") << config.hostname << "\n";
  std::ofstream hosts("/etc/hosts");
  hosts << "127.0.0.1\tlocalhost\n"
        << "::1\tlocalhost ip6-localhost ip6-loopback\n"
        << "127.0.1.1\t" << config.hostname << "\n";
  // The host's extra entries (add_hosts), checked by parse_host_entry: no spaces or newlines.
  for (const HostEntry& entry : config.hosts) hosts << entry.address << "\t" << entry.name << "\n";
}

void prepare_workspace(const BootConfig& config) {
  make_dirs(config.workspace, 0755);
  if (::chown(config.workspace.c_str(), config.uid, config.uid) != 0) log_errno("chown " + config.workspace, errno);
  // Parents before children: mount shallower paths first so nested shares land on top.
  std::vector<ShareMount> mounts = config.mounts;
  std::stable_sort(mounts.begin(), mounts.end(),
                   [](const ShareMount& a, const ShareMount& b) { return a.guest_path.size() < b.guest_path.size(); });
  for (const auto& share : mounts) {
    make_dirs(share.guest_path, 0755);
    unsigned long flags = MS_NOSUID | MS_NODEV;
    if (share.read_only) flags |= MS_RDONLY;
    if (::mount(share.tag.c_str(), share.guest_path.c_str(), "9p", flags,
                "trans=virtio,version=9p2000.L,msize=512000") != 0) {
      log_errno("mount share " + share.tag + " on " + share.guest_path, errno);
    }
  }
}

long long uptime_ms() {
  std::ifstream in("/proc/uptime");
  double seconds = 0;
  in >> seconds;
  return static_cast<long long>(seconds * 1000.0);
}

}  // namespace airlock::guest
