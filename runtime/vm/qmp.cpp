// QMP client; see qmp.hpp.
#include "runtime/vm/qmp.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace airlock::runtime {

std::optional<Result<nlohmann::json>> QmpParser::next() {
  const std::size_t nl = buffer_.find('\n');
  if (nl == std::string::npos) {
    if (buffer_.size() > kMaxLine) return Result<nlohmann::json>(Error{"QMP line too long"});
    return std::nullopt;
  }
  std::string line = buffer_.substr(0, nl);
  buffer_.erase(0, nl + 1);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return next();
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Result<nlohmann::json>(Error{"QMP sent a line that is not a JSON object"});
  }
  return Result<nlohmann::json>(std::move(j));
}

QmpClient::~QmpClient() {
  if (fd_ >= 0) close(fd_);
}

Result<nlohmann::json> QmpClient::read_object(std::chrono::steady_clock::time_point until) {
  for (;;) {
    if (auto obj = parser_.next()) return std::move(*obj);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Error{"QMP timed out"};
    pollfd p{fd_, POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char buf[4096];
    const ssize_t r = read(fd_, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Error{"QMP connection closed"};
    parser_.feed(std::string_view(buf, static_cast<std::size_t>(r)));
  }
}

Result<bool> QmpClient::connect(const std::string& socket_path, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) return Error{"QMP socket path too long"};
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Error{std::string("socket: ") + std::strerror(errno)};
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Error{"connect " + socket_path + ": " + std::strerror(errno)};
  }
  Result<nlohmann::json> greeting = read_object(until);
  if (!greeting) return Error{greeting.error()};
  if (!greeting->contains("QMP")) return Error{"QMP greeting missing"};
  Result<nlohmann::json> caps = execute("qmp_capabilities",
      std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()));
  if (!caps) return Error{caps.error()};
  return true;
}

Result<nlohmann::json> QmpClient::execute(const std::string& command,
                                          std::chrono::milliseconds deadline,
                                          const nlohmann::json& arguments) {
  if (fd_ < 0) return Error{"QMP not connected"};
  const auto until = std::chrono::steady_clock::now() + deadline;
  nlohmann::json request = {{"execute", command}};
  if (!arguments.is_null()) request["arguments"] = arguments;
  const std::string text = request.dump() + "\r\n";
  std::size_t sent = 0;
  while (sent < text.size()) {
    const ssize_t w = send(fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Error{std::string("QMP write: ") + std::strerror(errno)};
    sent += static_cast<std::size_t>(w);
  }
  for (;;) {
    Result<nlohmann::json> obj = read_object(until);
    if (!obj) return obj;
    if (obj->contains("event")) continue;
    if (auto r = obj->find("return"); r != obj->end()) return *r;
    if (auto e = obj->find("error"); e != obj->end()) {
      const std::string desc = e->is_object() && e->contains("desc") && (*e)["desc"].is_string()
                                   ? (*e)["desc"].get<std::string>()
                                   : "unknown error";
      return Error{"QMP " + command + ": " + desc};
    }
  }
}

}  // namespace airlock::runtime
