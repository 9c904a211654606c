// Orderly shutdown (see shutdown.hpp).
#include "guest-init/shutdown.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest-init/log.hpp"

namespace airlock::guest {
namespace {

// Reaps until no child is left or the deadline passes; true when none is left.
bool reap_until(std::chrono::steady_clock::time_point deadline) {
  while (true) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == ECHILD) return true;
    if (pid > 0) continue;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// /proc/mounts decodes spaces etc. as octal escapes ("\040").
std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto octal = [&](std::size_t at) { return s[at] >= '0' && s[at] <= '7'; };
    if (s[i] == '\\' && i + 3 < s.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
      continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

void power_off_now() {
  ::sync();
  ::reboot(RB_POWER_OFF);
  // Only reached if the power-off failed: halt in place rather than return.
  while (true) ::pause();
}

void shutdown_and_power_off() {
  ::kill(-1, SIGTERM);
  ::kill(-1, SIGCONT);  // stopped processes must run to act on SIGTERM
  if (!reap_until(std::chrono::steady_clock::now() + kShutdownGrace)) {
    ::kill(-1, SIGKILL);
    reap_until(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  }
  ::sync();

  std::vector<std::string> targets;
  {
    std::ifstream mounts("/proc/mounts");
    std::string line;
    while (std::getline(mounts, line)) {
      std::istringstream fields(line);
      std::string source, target;
      if (fields >> source >> target) targets.push_back(unescape(target));
    }
  }
  std::reverse(targets.begin(), targets.end());
  for (const auto& target : targets) {
    if (target == "/" || target == "/proc" || target == "/sys" || target == "/dev") continue;
    ::umount2(target.c_str(), MNT_DETACH);
  }
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY, nullptr) != 0) log_errno("remount / read-only", errno);
  power_off_now();
}

}  // namespace airlock::guest
