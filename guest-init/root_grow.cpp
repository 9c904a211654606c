// Background online grow of the root file system (see root_grow.hpp).
#include "guest-init/root_grow.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <string>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest-init/ext4_superblock.hpp"
#include "guest-init/log.hpp"

namespace airlock::guest {
namespace {

constexpr const char* kResize2fs = "/sbin/resize2fs";
constexpr std::size_t kKeptOutput = 2048;  // enough for resize2fs's error message
constexpr int kNice = 10;

// Disk and file system sizes in bytes; false (logged) if either cannot be read.
bool read_sizes(const char* device, std::uint64_t& disk_bytes, std::uint64_t& fs_bytes) {
  const int fd = ::open(device, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    log_errno(std::string("grow root: open ") + device, errno);
    return false;
  }
  std::array<std::uint8_t, kExt4SuperblockSize> superblock{};
  bool ok = ::ioctl(fd, BLKGETSIZE64, &disk_bytes) == 0;
  if (!ok) log_errno("grow root: BLKGETSIZE64", errno);
  if (ok) {
    const ssize_t n = ::pread(fd, superblock.data(), superblock.size(), kExt4SuperblockOffset);
    const auto size = n == static_cast<ssize_t>(superblock.size()) ? ext4_size_bytes(superblock) : std::nullopt;
    if (size) fs_bytes = *size;
    else log_line("grow root: no ext4 superblock on the root device");
    ok = size.has_value();
  }
  ::close(fd);
  return ok;
}

// The watcher: runs resize2fs with its output on a pipe, logs the result, exits.
[[noreturn]] void watch_resize(const char* device) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    log_errno("grow root: pipe", errno);
    ::_exit(1);
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    log_errno("grow root: fork", errno);
    ::_exit(1);
  }
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    char* const argv[] = {const_cast<char*>(kResize2fs), const_cast<char*>(device), nullptr};
    char* const envp[] = {const_cast<char*>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nullptr};
    ::execve(kResize2fs, argv, envp);
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  std::string output;
  std::array<char, 512> chunk{};
  while (true) {
    const ssize_t n = ::read(pipe_fds[0], chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(chunk.data(), static_cast<std::size_t>(n));
    if (output.size() > kKeptOutput) output.erase(0, output.size() - kKeptOutput);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    log_line(std::string("grow root: ") + device + " grown to fill its disk");
    ::_exit(0);
  }
  for (char& c : output)
    if (c == '\n') c = ' ';
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) output = std::string("cannot run ") + kResize2fs;
  const std::string how = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                            : "signal " + std::to_string(WTERMSIG(status));
  log_line(std::string("grow root: resize2fs failed (") + how + "): " + output);
  ::_exit(1);
}

}  // namespace

void start_root_grow(const char* device) {
  std::uint64_t disk_bytes = 0;
  std::uint64_t fs_bytes = 0;
  if (!read_sizes(device, disk_bytes, fs_bytes) || !worth_growing(disk_bytes, fs_bytes)) return;
  log_line("grow root: file system " + std::to_string(fs_bytes >> 20) + " MiB, disk " +
           std::to_string(disk_bytes >> 20) + " MiB; running resize2fs in the background");
  const pid_t pid = ::fork();
  if (pid < 0) {
    log_errno("grow root: fork", errno);
    return;
  }
  if (pid != 0) return;  // PID 1 reaps the watcher like any other orphan
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  ::setpriority(PRIO_PROCESS, 0, kNice);
  watch_resize(device);
}

}  // namespace airlock::guest
