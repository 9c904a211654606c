// Blocking API-socket client; see client.hpp.
#include "runtime/vm/client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/vm/tree_transfer.hpp"

namespace airlock::runtime {

using protocol::Frame;
using protocol::FrameType;

namespace {

int g_signal_pipe[2] = {-1, -1};

void relay_signal(int signo) {
  const int saved = errno;
  const auto byte = static_cast<unsigned char>(signo);
  (void)!write(g_signal_pipe[1], &byte, 1);
  errno = saved;
}

// Installs the relay for the duration of one exec.
class SignalRelay {
 public:
  explicit SignalRelay(bool with_winch) {
    if (pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return;
    struct sigaction sa {};
    sa.sa_handler = relay_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int s : {SIGINT, SIGTERM, SIGHUP}) install(s, sa);
    if (with_winch) install(SIGWINCH, sa);
  }
  ~SignalRelay() {
    for (auto& [signo, old] : saved_) sigaction(signo, &old, nullptr);
    for (int& fd : g_signal_pipe) {
      if (fd >= 0) close(fd);
      fd = -1;
    }
  }
  SignalRelay(const SignalRelay&) = delete;
  SignalRelay& operator=(const SignalRelay&) = delete;
  int fd() const { return g_signal_pipe[0]; }

 private:
  void install(int signo, const struct sigaction& sa) {
    struct sigaction old {};
    if (sigaction(signo, &sa, &old) == 0) saved_.emplace_back(signo, old);
  }
  std::vector<std::pair<int, struct sigaction>> saved_;
};

nlohmann::json parse_reply(const Frame& frame) {
  auto j = nlohmann::json::parse(frame.payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return nlohmann::json::object();
  return j;
}

std::string error_text(const nlohmann::json& reply) {
  const auto message = reply.find("message");
  const auto code = reply.find("code");
  std::string text = message != reply.end() && message->is_string() ? message->get<std::string>()
                                                                     : "request failed";
  if (code != reply.end() && code->is_string()) text += " (" + code->get<std::string>() + ")";
  return text;
}

}  // namespace

nlohmann::json exec_request_json(const ExecRequest& r) {
  nlohmann::json j = {{"op", "exec"}, {"argv", r.argv}, {"tty", r.tty}, {"stdin", r.forward_stdin}};
  if (!r.env.empty()) j["env"] = r.env;
  if (!r.cwd.empty()) j["cwd"] = r.cwd;
  if (!r.user.empty()) j["user"] = r.user;
  if (r.tty) {
    j["rows"] = r.rows;
    j["cols"] = r.cols;
  }
  if (r.timeout_ms != 0) j["timeout_ms"] = r.timeout_ms;
  if (r.privileged) j["privileged"] = true;
  return j;
}

ApiClient::~ApiClient() {
  if (fd_ >= 0) close(fd_);
}

void ApiClient::shutdown() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

ApiClient::ApiClient(ApiClient&& other) noexcept
    : fd_(other.fd_), next_channel_(other.next_channel_), decoder_(std::move(other.decoder_)) {
  other.fd_ = -1;
}

ApiClient& ApiClient::operator=(ApiClient&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    next_channel_ = other.next_channel_;
    decoder_ = std::move(other.decoder_);
    other.fd_ = -1;
  }
  return *this;
}

Result<ApiClient> ApiClient::connect(const std::filesystem::path& api_sock) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = api_sock.string();
  int dir_fd = -1;
  if (path.size() >= sizeof addr.sun_path) {
    // Long homes: reach the socket through a short /proc/self/fd path to its folder.
    dir_fd = open(api_sock.parent_path().c_str(), O_PATH | O_CLOEXEC);
    if (dir_fd < 0) return Error{"can't open " + api_sock.parent_path().string()};
    path = "/proc/self/fd/" + std::to_string(dir_fd) + "/" + api_sock.filename().string();
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ApiClient client;
  client.fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client.fd_ < 0) return Error{std::string("socket: ") + std::strerror(errno)};
  const int rc = ::connect(client.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int saved = errno;
  if (dir_fd >= 0) close(dir_fd);
  if (rc != 0) return Error{"can't connect to " + api_sock.string() + ": " + std::strerror(saved)};
  return client;
}

Result<bool> ApiClient::send(FrameType type, std::uint32_t channel, std::string_view payload) {
  const std::string bytes = protocol::encode_frame(type, channel, payload);
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t w = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Error{std::string("lost the VM's supervisor: ") + std::strerror(errno)};
    sent += static_cast<std::size_t>(w);
  }
  return true;
}

Result<Frame> ApiClient::receive(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto frame = decoder_.next()) return std::move(*frame);
    if (decoder_.failed()) return Error{"bad frame from the supervisor: " + decoder_.error()};
    int wait = -1;
    if (timeout.count() >= 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return Error{"timed out waiting for the VM"};
      wait = static_cast<int>(left.count());
    }
    pollfd p{fd_, POLLIN, 0};
    const int n = poll(&p, 1, wait);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) continue;
    char buf[65536];
    const ssize_t r = read(fd_, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Error{"the VM's supervisor closed the connection"};
    decoder_.feed(std::string_view(buf, static_cast<std::size_t>(r)));
  }
}

Result<nlohmann::json> ApiClient::call(const nlohmann::json& request, std::chrono::milliseconds timeout) {
  const std::uint32_t channel = next_channel();
  if (auto s = send(FrameType::control, channel, request.dump()); !s) return Error{s.error()};
  for (;;) {
    Result<Frame> frame = receive(timeout);
    if (!frame) return Error{frame.error()};
    if (frame->channel != channel || frame->type != FrameType::control) continue;
    nlohmann::json reply = parse_reply(*frame);
    if (protocol::op_of(reply) == "error") return Error{error_text(reply)};
    return reply;
  }
}

Result<ExecOutcome> ApiClient::exec(const ExecRequest& request, ExecIo& io) {
  const std::uint32_t channel = next_channel();
  if (auto s = send(FrameType::control, channel, exec_request_json(request).dump()); !s) {
    return Error{s.error()};
  }
  SignalRelay relay(request.tty && io.window_size != nullptr);
  bool stdin_open = request.forward_stdin;
  ExecOutcome outcome;
  for (;;) {
    // Frames already decoded first: poll() only knows about the socket.
    while (auto frame = decoder_.next()) {
      if (frame->channel != channel) continue;
      if (frame->type == FrameType::stdout_data) {
        if (io.on_stdout) io.on_stdout(frame->payload);
      } else if (frame->type == FrameType::stderr_data) {
        if (io.on_stderr) io.on_stderr(frame->payload);
      } else if (frame->type == FrameType::control) {
        nlohmann::json reply = parse_reply(*frame);
        const std::string op = protocol::op_of(reply);
        if (op == "started") {
          outcome.started = true;
        } else if (op == "exit") {
          auto code = reply.find("exit_code");
          outcome.exit_code = code != reply.end() && code->is_number_integer() ? code->get<int>() : 1;
          auto sig = reply.find("signal_name");
          if (sig != reply.end() && sig->is_string()) outcome.signal_name = sig->get<std::string>();
          auto to = reply.find("timed_out");
          outcome.timed_out = to != reply.end() && to->is_boolean() && to->get<bool>();
          auto d = reply.find("duration_ms");
          if (d != reply.end() && d->is_number_integer()) outcome.duration_ms = d->get<std::int64_t>();
          return outcome;
        } else if (op == "error") {
          auto code = reply.find("code");
          outcome.error_code = code != reply.end() && code->is_string() ? code->get<std::string>() : "io";
          auto message = reply.find("message");
          outcome.error_message = message != reply.end() && message->is_string()
                                      ? message->get<std::string>() : "exec failed";
          return outcome;
        }
      }
    }
    if (decoder_.failed()) return Error{"bad frame from the supervisor: " + decoder_.error()};

    pollfd fds[3] = {{fd_, POLLIN, 0}, {relay.fd(), POLLIN, 0}, {stdin_open ? io.stdin_fd : -1, POLLIN, 0}};
    const int n = poll(fds, 3, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{std::string("poll: ") + std::strerror(errno)};
    }
    if (fds[1].revents & POLLIN) {
      unsigned char signo = 0;
      while (read(relay.fd(), &signo, 1) == 1) {
        nlohmann::json msg;
        if (signo == SIGWINCH) {
          auto size = io.window_size ? io.window_size() : std::nullopt;
          if (!size) continue;
          msg = {{"op", "resize"}, {"rows", size->first}, {"cols", size->second}};
        } else {
          msg = {{"op", "signal"}, {"signal", signo}};
        }
        if (auto s = send(FrameType::control, channel, msg.dump()); !s) return Error{s.error()};
      }
    }
    if (stdin_open && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[65536];
      const ssize_t r = read(io.stdin_fd, buf, sizeof buf);
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      const std::string_view data(buf, r > 0 ? static_cast<std::size_t>(r) : 0);
      if (auto s = send(FrameType::stdin_data, channel, data); !s) return Error{s.error()};
      if (r <= 0) stdin_open = false;  // the empty frame just sent is EOF
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      const ssize_t r = read(fd_, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return Error{"the VM stopped while the command was running"};
      decoder_.feed(std::string_view(buf, static_cast<std::size_t>(r)));
    }
  }
}

Result<std::uint64_t> ApiClient::put_file(const std::string& guest_path, int fd, std::uint64_t size,
                                          std::uint32_t mode) {
  const std::uint32_t channel = next_channel();
  nlohmann::json request = {{"op", "file.write"}, {"path", guest_path}, {"mode", mode},
                            {"size", size}, {"parents", true}};
  if (auto s = send(FrameType::control, channel, request.dump()); !s) return Error{s.error()};
  std::string buf(protocol::kMaxPayload, '\0');
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t r = read(fd, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error{std::string("read: ") + std::strerror(errno)};
    const std::string_view chunk(buf.data(), static_cast<std::size_t>(r));
    if (auto s = send(FrameType::file_data, channel, chunk); !s) return Error{s.error()};
    if (r == 0) break;
    total += static_cast<std::uint64_t>(r);
    // An early refusal (permission, too large) ends the upload.
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 0) > 0) break;
  }
  for (;;) {
    Result<Frame> frame = receive(std::chrono::seconds(120));
    if (!frame) return Error{frame.error()};
    if (frame->channel != channel || frame->type != FrameType::control) continue;
    nlohmann::json reply = parse_reply(*frame);
    if (protocol::op_of(reply) == "ok") return total;
    return Error{error_text(reply)};
  }
}

Result<std::pair<std::uint64_t, std::uint32_t>> ApiClient::get_file(
    const std::string& guest_path, const std::function<bool(std::string_view)>& sink) {
  const std::uint32_t channel = next_channel();
  nlohmann::json request = {{"op", "file.read"}, {"path", guest_path}};
  if (auto s = send(FrameType::control, channel, request.dump()); !s) return Error{s.error()};
  std::uint32_t mode = 0644;
  std::uint64_t total = 0;
  bool header = false;
  for (;;) {
    Result<Frame> frame = receive(std::chrono::seconds(120));
    if (!frame) return Error{frame.error()};
    if (frame->channel != channel) continue;
    if (frame->type == FrameType::control) {
      nlohmann::json reply = parse_reply(*frame);
      if (protocol::op_of(reply) != "ok") return Error{error_text(reply)};
      auto m = reply.find("mode");
      if (m != reply.end() && m->is_number_unsigned()) mode = m->get<std::uint32_t>() & 07777;
      header = true;
    } else if (frame->type == FrameType::file_data && header) {
      if (frame->payload.empty()) return std::make_pair(total, mode);
      total += frame->payload.size();
      if (!sink(frame->payload)) return Error{"write failed"};
    }
  }
}

Result<protocol::TreeCounts> ApiClient::upload_tree(const std::filesystem::path& host_path,
                                                    const std::string& guest_path) {
  auto reader = TreeReader::open(host_path);
  if (!reader) return Error{reader.error()};
  const std::uint32_t channel = next_channel();
  nlohmann::json request = {{"op", "file.upload"}, {"path", guest_path}};
  if (auto s = send(FrameType::control, channel, request.dump()); !s) return Error{s.error()};
  std::string buf(protocol::kMaxPayload, '\0');
  // The guest may refuse at any point (a folder in the way, no space): look for its reply
  // between frames and stop sending at once.
  auto refused = [&]() -> bool {
    pollfd p{fd_, POLLIN, 0};
    return decoder_.buffered() > 0 || poll(&p, 1, 0) > 0;
  };
  bool stopped_early = false;
  while (auto entry = (*reader)->next()) {
    if (auto s = send(FrameType::control, channel, protocol::dump(protocol::entry_message(*entry))); !s) {
      return Error{s.error()};
    }
    if (entry->type == protocol::EntryType::file) {
      for (;;) {
        const std::size_t n = (*reader)->read(buf.data(), buf.size());
        if (auto s = send(FrameType::file_data, channel, std::string_view(buf.data(), n)); !s) return Error{s.error()};
        if (n == 0) break;
        if (refused()) break;
      }
    }
    if (refused()) {
      stopped_early = true;
      break;
    }
  }
  if (!stopped_early) {
    if (auto s = send(FrameType::control, channel, R"({"op":"end"})"); !s) return Error{s.error()};
  }
  for (;;) {
    Result<Frame> frame = receive(std::chrono::seconds(120));
    if (!frame) return Error{frame.error()};
    if (frame->channel != channel || frame->type != FrameType::control) continue;
    nlohmann::json reply = parse_reply(*frame);
    if (protocol::op_of(reply) != "ok") return Error{error_text(reply)};
    protocol::TreeCounts counts = protocol::parse_counts(reply);
    counts.skipped += (*reader)->counts().skipped;
    return counts;
  }
}

Result<protocol::TreeCounts> ApiClient::download_tree(const std::string& guest_path,
                                                      const std::filesystem::path& host_path) {
  auto writer = TreeWriter::open(host_path);
  if (!writer) return Error{writer.error()};
  const std::uint32_t channel = next_channel();
  nlohmann::json request = {{"op", "file.download"}, {"path", guest_path}};
  if (auto s = send(FrameType::control, channel, request.dump()); !s) return Error{s.error()};
  for (;;) {
    Result<Frame> frame = receive(std::chrono::seconds(120));
    if (!frame) return Error{frame.error()};
    if (frame->channel != channel) continue;
    if (frame->type == FrameType::file_data) {
      if (auto w = (*writer)->on_data(frame->payload); !w) {
        // Stop the guest's walk; its remaining frames on this channel are skipped.
        (void)send(FrameType::control, channel, R"({"op":"cancel"})");
        return Error{w.error()};
      }
      continue;
    }
    if (frame->type != FrameType::control) continue;
    nlohmann::json reply = parse_reply(*frame);
    const std::string op = protocol::op_of(reply);
    if (op == "entry") {
      auto entry = protocol::parse_entry(reply);
      std::string problem;
      if (auto* why = std::get_if<std::string>(&entry)) {
        problem = "the guest sent a bad entry: " + *why;
      } else if (auto w = (*writer)->on_entry(std::get<protocol::TreeEntry>(entry)); !w) {
        problem = w.error();
      }
      if (!problem.empty()) {
        (void)send(FrameType::control, channel, R"({"op":"cancel"})");
        return Error{problem};
      }
    } else if (op == "end") {
      auto done = (*writer)->finish();
      if (!done) return Error{done.error()};
      protocol::TreeCounts counts = *done;
      counts.skipped += protocol::parse_counts(reply).skipped;
      return counts;
    } else {
      return Error{error_text(reply)};
    }
  }
}

Result<bool> ApiClient::stop(std::chrono::milliseconds timeout) {
  const std::uint32_t channel = next_channel();
  if (auto s = send(FrameType::control, channel, R"({"op":"stop"})"); !s) return Error{s.error()};
  for (;;) {
    Result<Frame> frame = receive(timeout);
    if (!frame) {
      // The supervisor closing the socket is the normal end of a stop.
      if (frame.error().find("closed") != std::string::npos) return true;
      return Error{frame.error()};
    }
    if (frame->channel == channel && frame->type == FrameType::control &&
        protocol::op_of(parse_reply(*frame)) == "ok") {
      return true;
    }
  }
}

Result<bool> ApiClient::events(std::uint64_t from_seq, bool follow,
                               const std::function<bool(const nlohmann::ordered_json&)>& sink) {
  const std::uint32_t channel = next_channel();
  nlohmann::json request = {{"op", "events"}, {"from_seq", from_seq}, {"follow", follow}};
  if (auto s = send(FrameType::control, channel, request.dump()); !s) return Error{s.error()};
  for (;;) {
    Result<Frame> frame = receive(std::chrono::milliseconds(-1));
    if (!frame) {
      if (frame.error().find("closed") != std::string::npos) return true;
      return Error{frame.error()};
    }
    if (frame->channel != channel || frame->type != FrameType::control) continue;
    // Ordered: events keep the field order they were written with.
    auto reply = nlohmann::ordered_json::parse(frame->payload, nullptr, false);
    if (reply.is_discarded() || !reply.is_object()) continue;
    auto op_field = reply.find("op");
    const std::string op = op_field != reply.end() && op_field->is_string() ? op_field->get<std::string>() : "";
    if (op == "event") {
      auto e = reply.find("event");
      if (e != reply.end() && e->is_object() && !sink(*e)) return true;
    } else if (op == "ok") {
      return true;
    } else {
      return Error{error_text(nlohmann::json::parse(frame->payload, nullptr, false))};
    }
  }
}

}  // namespace airlock::runtime
