// Blocking client for a VM's API socket (vms/<id>/api.sock), used by the CLI.
//
// Speaks the protocol/frame.hpp framing to the supervisor, which forwards requests to the
// guest. One request at a time per client object (channel 1, then 2, ...): the CLI never
// needs more. exec() streams output through callbacks, forwards stdin, and relays
// SIGINT/SIGTERM/SIGHUP to the guest process (and SIGWINCH as a resize with a TTY);
// everything it reads from the socket comes from the guest and is treated as untrusted.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "protocol/frame.hpp"
#include "protocol/tree.hpp"

namespace airlock::runtime {

struct ExecRequest {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string cwd;          // "" = the guest's default (the workspace)
  std::string user;         // "" = the guest's default (airlock)
  bool tty = false;
  std::uint16_t rows = 24, cols = 80;
  bool forward_stdin = false;
  std::uint64_t timeout_ms = 0;
  bool privileged = false;
};

struct ExecIo {
  int stdin_fd = 0;         // read when forward_stdin
  std::function<void(std::string_view)> on_stdout;
  std::function<void(std::string_view)> on_stderr;
  // Current terminal size, queried on SIGWINCH when tty (nullptr = no resizes).
  std::function<std::optional<std::pair<std::uint16_t, std::uint16_t>>()> window_size;
};

struct ExecOutcome {
  bool started = false;
  int exit_code = -1;
  std::string signal_name;
  bool timed_out = false;
  std::int64_t duration_ms = 0;
  std::string error_code;   // set when the guest refused to start it
  std::string error_message;
};

nlohmann::json exec_request_json(const ExecRequest& request);

class ApiClient {
 public:
  ApiClient() = default;
  ~ApiClient();
  ApiClient(ApiClient&& other) noexcept;
  ApiClient& operator=(ApiClient&& other) noexcept;
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  static Result<ApiClient> connect(const std::filesystem::path& api_sock);

  // A one-reply request (status, file.stat, file.list, file.mkdir, file.remove).
  // An {"op":"error"} reply is returned as an error with its message.
  Result<nlohmann::json> call(const nlohmann::json& request,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30));

  Result<ExecOutcome> exec(const ExecRequest& request, ExecIo& io);

  // Uploads size bytes read from fd to the guest path.
  Result<std::uint64_t> put_file(const std::string& guest_path, int fd, std::uint64_t size,
                                 std::uint32_t mode);
  // Downloads a guest file; sink gets each chunk. Returns {size, mode}.
  Result<std::pair<std::uint64_t, std::uint32_t>> get_file(
      const std::string& guest_path, const std::function<bool(std::string_view)>& sink);

  // Copies a host folder to guest_path (made, or filled if it is a folder already), and
  // a guest folder to host_path, following no symlink on either side (tree_transfer.hpp).
  Result<protocol::TreeCounts> upload_tree(const std::filesystem::path& host_path, const std::string& guest_path);
  Result<protocol::TreeCounts> download_tree(const std::string& guest_path, const std::filesystem::path& host_path);

  // Asks for an orderly stop and waits until the supervisor is done (or timeout).
  Result<bool> stop(std::chrono::milliseconds timeout);

  // Streams audit events (each a JSON object) until the stream ends or sink returns false.
  Result<bool> events(std::uint64_t from_seq, bool follow,
                      const std::function<bool(const nlohmann::ordered_json&)>& sink);

  // Shuts the connection down (both ways) without closing it: a call blocked on it in
  // another thread (events with follow) sees the stream end. Safe from any thread.
  void shutdown();

 private:
  Result<bool> send(protocol::FrameType type, std::uint32_t channel, std::string_view payload);
  // Next frame, or an error on EOF/timeout/garbage. timeout < 0 waits forever.
  Result<protocol::Frame> receive(std::chrono::milliseconds timeout);
  std::uint32_t next_channel() { return next_channel_++; }

  int fd_ = -1;
  std::uint32_t next_channel_ = 1;
  protocol::FrameDecoder decoder_;
};

}  // namespace airlock::runtime
