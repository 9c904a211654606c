// Console log lines (see log.hpp). Uses write(2) directly: no stdio buffering to lose on
// power-off, and safe to call between fork and exec.
#include "guest-init/log.hpp"

#include <cstring>
#include <string>

#include <unistd.h>

namespace airlock::guest {

void log_line(std::string_view message) {
  std::string line = "airlock-init: ";
  line.append(message);
  line.push_back('\n');
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) return;  // no console: nothing better to do
    done += static_cast<std::size_t>(n);
  }
}

void log_errno(std::string_view message, int err) {
  std::string line(message);
  line += ": ";
  line += std::strerror(err);
  log_line(line);
}

}  // namespace airlock::guest
