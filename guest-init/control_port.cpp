// Locates and opens the control port (see control_port.hpp).
#include "guest-init/control_port.hpp"

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "guest-init/log.hpp"

namespace airlock::guest {
namespace {

constexpr const char* kPortName = "airlock.ctl";

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// "/dev/vportNpM" of the port named kPortName, creating the node if needed; "" if absent.
std::string find_port() {
  DIR* d = ::opendir("/sys/class/virtio-ports");
  if (d == nullptr) return {};
  std::string found;
  while (dirent* entry = ::readdir(d)) {
    const std::string name = entry->d_name;
    if (name.rfind("vport", 0) != 0) continue;
    const std::string sys = "/sys/class/virtio-ports/" + name;
    if (read_line(sys + "/name") != kPortName) continue;
    const std::string dev = "/dev/" + name;
    struct stat st {};
    if (::stat(dev.c_str(), &st) != 0) {
      unsigned major_no = 0, minor_no = 0;
      char colon = 0;
      std::istringstream numbers(read_line(sys + "/dev"));
      if (!(numbers >> major_no >> colon >> minor_no) || colon != ':') continue;
      if (::mknod(dev.c_str(), S_IFCHR | 0600, makedev(major_no, minor_no)) != 0 && errno != EEXIST) {
        log_errno("mknod " + dev, errno);
        continue;
      }
    }
    found = dev;
    break;
  }
  ::closedir(d);
  return found;
}

}  // namespace

int open_control_port(std::chrono::milliseconds wait) {
  const auto until = std::chrono::steady_clock::now() + wait;
  while (true) {
    const std::string dev = find_port();
    if (!dev.empty()) {
      ::chown(dev.c_str(), 0, 0);
      ::chmod(dev.c_str(), 0600);
      const int fd = ::open(dev.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      if (fd >= 0) return fd;
      log_errno("open " + dev, errno);
      return -1;
    }
    if (std::chrono::steady_clock::now() >= until) {
      log_line("control port airlock.ctl not found");
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace airlock::guest
