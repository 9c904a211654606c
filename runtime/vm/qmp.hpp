// A minimal QMP (QEMU Machine Protocol) client over the VM's qmp.sock.
//
// QMP speaks JSON objects separated by CRLF: a greeting, then capability negotiation
// ("qmp_capabilities"), then commands answered by {"return":...} or {"error":...}, with
// asynchronous {"event":...} objects interleaved (skipped here). Blocking with a deadline
// on every call: it is used only for short management commands (query-status, quit),
// never on the data path. The parser is split out (QmpParser) so it is tested sans-IO.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace airlock::runtime {

// Splits a QMP byte stream into JSON objects (one per line).
class QmpParser {
 public:
  static constexpr std::size_t kMaxLine = 1 << 20;
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next complete object; an unparsable or oversized line is an error.
  std::optional<Result<nlohmann::json>> next();

 private:
  std::string buffer_;
};

class QmpClient {
 public:
  QmpClient() = default;
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Connects, reads the greeting and negotiates capabilities.
  Result<bool> connect(const std::string& socket_path, std::chrono::milliseconds deadline);
  // Runs one command; returns its "return" value or the QMP error's description.
  Result<nlohmann::json> execute(const std::string& command, std::chrono::milliseconds deadline,
                                 const nlohmann::json& arguments = nullptr);

 private:
  Result<nlohmann::json> read_object(std::chrono::steady_clock::time_point until);
  int fd_ = -1;
  QmpParser parser_;
};

}  // namespace airlock::runtime
