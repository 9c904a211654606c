// The supervisor's Asio driver; see supervisor.hpp for the theory of operation.
#include "runtime/vm/supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <random>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

// GCC 12's flow analysis reports a "potential null dereference" inside Asio's scheduler
// once it is inlined here; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio.hpp>

#include "protocol/frame.hpp"
#include "proxy/mitm/context.hpp"
#include "policy/engine.hpp"
#include "proxy/guest/engine.hpp"
#include "runtime/vm/audit_log.hpp"
#include "runtime/vm/host_tsc.hpp"
#include "runtime/vm/process.hpp"
#include "runtime/vm/qemu_argv.hpp"
#include "runtime/vm/qmp.hpp"
#include "runtime/vm/router.hpp"
#include "runtime/vm/vm_store.hpp"

namespace airlock::runtime {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using protocol::Frame;
using protocol::FrameType;

namespace {

// Relative names: the supervisor runs inside the VM directory.
constexpr const char* kApiSock = "api.sock";
constexpr const char* kCtlSock = "ctl.sock";
constexpr const char* kQmpSock = "qmp.sock";
constexpr const char* kNetSock = "net.sock";
constexpr const char* kConsoleLog = "console.log";
constexpr const char* kDisk = "disk.qcow2";
constexpr const char* kEvents = "events.jsonl";
constexpr const char* kState = "state.json";
constexpr const char* kQemuLog = "qemu.log";

constexpr std::size_t kClientHighWater = 4u << 20;  // pause guest reads above this backlog
constexpr std::size_t kGuestHighWater = 4u << 20;   // pause client reads above this backlog
constexpr std::size_t kMaxClients = 64;

void log_line(const std::string& line) {
  std::fprintf(stderr, "%lld supervisor: %s\n", static_cast<long long>(unix_millis()), line.c_str());
  std::fflush(stderr);
}

std::string last_line_of(const std::string& file) {
  std::ifstream in(file);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

// {"op":"event","event":LINE}, spliced as text so the event keeps its field order
// (seq, type, timestamp, vm_id first). line is one valid JSON object we wrote.
std::string event_message(const std::string& line) {
  return R"({"op":"event","event":)" + line + "}";
}

struct Client {
  Client(ClientId client_id, local::socket s) : id(client_id), socket(std::move(s)) {}
  ClientId id;
  local::socket socket;
  protocol::FrameDecoder decoder;
  std::array<char, 64 * 1024> buffer{};
  std::deque<std::string> queue;
  std::size_t queued = 0;
  bool writing = false;
  bool reading = false;
  bool closed = false;
};

class Supervisor {
 public:
  Supervisor(const SupervisorConfig& config, int ready_fd)
      : config_(config), ready_fd_(ready_fd), acceptor_(io_), ctl_(io_), connect_timer_(io_),
        boot_timer_(io_), stop_timer_(io_), exit_timer_(io_),
        signals_(io_, SIGCHLD, SIGTERM, SIGINT) {
    signals_.add(SIGHUP);
  }

  int run();

 private:
  // Setup and lifecycle.
  bool prepare();
  void fail(const std::string& error);
  void report_ready(const nlohmann::json& report);
  void write_state();
  void emit_audit(const nlohmann::json& body);
  void emit_event(const audit::Event& event);
  void publish(const std::string& line);
  void on_signal(int signo);
  void on_qemu_exit(int status);
  void begin_stop();
  void escalate_stop();
  void finish();
  bool start_network(MachineConfig& machine);

  // Guest side.
  void try_connect_ctl();
  void start_ctl_read();
  void queue_ctl(const Frame& frame);
  void flush_ctl();
  void on_hello(const nlohmann::json& hello);
  void on_setup_reply(const nlohmann::json& reply);

  // Client side.
  void start_accept();
  void start_client_read(const std::shared_ptr<Client>& client);
  void queue_client(const std::shared_ptr<Client>& client, const Frame& frame);
  void flush_client(const std::shared_ptr<Client>& client);
  void close_client(const std::shared_ptr<Client>& client);
  void handle_host_request(const std::shared_ptr<Client>& client, std::uint32_t channel,
                           const nlohmann::json& request);
  void dispatch(const Router::Outputs& outputs);
  void update_flow_control();

  const SupervisorConfig& config_;
  int ready_fd_;
  asio::io_context io_;
  local::acceptor acceptor_;
  local::socket ctl_;
  asio::steady_timer connect_timer_, boot_timer_, stop_timer_, exit_timer_;
  asio::signal_set signals_;

  Router router_;
  AuditLog audit_;
  VmState state_;
  protocol::FrameDecoder ctl_decoder_;
  std::array<char, 64 * 1024> ctl_buffer_{};
  std::deque<std::string> ctl_queue_;
  std::size_t ctl_queued_ = 0;
  bool ctl_connected_ = false;
  bool ctl_writing_ = false;
  bool ctl_reading_ = false;

  std::map<ClientId, std::shared_ptr<Client>> clients_;
  ClientId next_client_ = 1;
  std::vector<std::pair<ClientId, std::uint32_t>> event_followers_;
  std::vector<std::pair<ClientId, std::uint32_t>> stop_waiters_;

  std::unique_ptr<guest::NetworkEngine> network_;
  std::shared_ptr<mitm::MitmContext> mitm_;
  nlohmann::json boot_report_;       // held until the guest trusts the CA
  bool awaiting_trust_ = false;

  pid_t qemu_pid_ = -1;
  std::chrono::steady_clock::time_point qemu_started_;
  bool booted_ = false;
  bool stopping_ = false;
  int stop_stage_ = 0;
  bool exiting_ = false;
  int exit_code_ = 0;
};

void Supervisor::report_ready(const nlohmann::json& report) {
  if (ready_fd_ < 0) return;
  const std::string line = report.dump() + "\n";
  (void)!write(ready_fd_, line.data(), line.size());
  close(ready_fd_);
  ready_fd_ = -1;
}

void Supervisor::write_state() {
  if (!write_vm_state(kState, state_)) log_line("can't write state.json");
}

void Supervisor::emit_audit(const nlohmann::json& body) { publish(audit_.append(body, unix_millis())); }

void Supervisor::emit_event(const audit::Event& event) { publish(audit_.append(event, unix_millis())); }

void Supervisor::publish(const std::string& line) {
  if (line.empty()) {
    log_line("can't append to events.jsonl");
    return;
  }
  for (const auto& [client_id, channel] : event_followers_) {
    auto it = clients_.find(client_id);
    if (it == clients_.end()) continue;
    queue_client(it->second, Frame{FrameType::control, channel, event_message(line)});
  }
}

void Supervisor::fail(const std::string& error) {
  log_line("failed: " + error);
  state_.status = "failed";
  state_.error = error;
  write_state();
  report_ready({{"ok", false}, {"error", error}});
  exit_code_ = 1;
}

bool Supervisor::prepare() {
  state_.id = config_.id;
  state_.pid = getpid();
  state_.status = "creating";
  state_.created = unix_millis();
  state_.image = config_.image;
  state_.config = config_.config_json;
  router_.set_base_env(config_.env);  // start_network adds the network's variables
  state_.accel = accel_name(config_.accel);
  write_state();
  if (!audit_.open(kEvents, config_.id)) {
    fail("can't open events.jsonl");
    return false;
  }
  emit_audit({{"type", "lifecycle"},
              {"lifecycle", {{"event", "created"}, {"image", config_.image},
                             {"accel", accel_name(config_.accel)}}}});
  log_line("accelerator " + std::string(accel_name(config_.accel)) + ": " + config_.accel_reason);

  const std::vector<std::string> img = {config_.qemu_img_binary, "create", "-q", "-f", "qcow2",
                                        "-F", "raw", "-b", config_.rootfs.string(), kDisk,
                                        std::to_string(config_.disk_size_mb) + "M"};
  Result<CommandResult> made = run_command(img, std::chrono::seconds(60));
  if (!made || made->exit_code != 0) {
    fail("qemu-img create failed: " + (made ? made->output : made.error()));
    return false;
  }

  ::unlink(kApiSock);
  boost::system::error_code ec;
  acceptor_.open(local(), ec);
  if (!ec) acceptor_.bind(local::endpoint(kApiSock), ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    fail("can't listen on api.sock: " + ec.message());
    return false;
  }
  ::chmod(kApiSock, 0600);

  MachineConfig machine;
  machine.id = config_.id;
  machine.qemu_binary = config_.qemu_binary;
  machine.kernel = config_.kernel;
  machine.initramfs = config_.initramfs;
  machine.disk = kDisk;
  machine.cpus = config_.cpus;
  machine.memory_mb = config_.memory_mb;
  machine.accel = config_.accel;
  if (config_.accel == Accel::tcg) machine.tsc_khz = measure_host_tsc_khz();
  machine.mounts = config_.mounts;
  machine.workspace = config_.workspace;
  machine.console_log = kConsoleLog;
  machine.ctl_socket = kCtlSock;
  machine.qmp_socket = kQmpSock;
  if (config_.qemu_user_network) {
    NetworkConfig nic;
    nic.qemu_user_mode = true;
    nic.guest_ip = "10.0.2.15/24";  // QEMU's user-mode defaults
    nic.gateway_ip = "10.0.2.2";
    nic.dns = "10.0.2.3";
    machine.network = nic;
  } else if (config_.network && !start_network(machine)) {
    return false;
  }
  std::vector<std::string> argv;
  try {
    argv = build_qemu_argv(machine);
  } catch (const std::invalid_argument& e) {
    fail(e.what());
    return false;
  }
  ::unlink(kCtlSock);
  ::unlink(kQmpSock);
  const int qemu_log = ::open(kQemuLog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  SpawnOptions options;
  options.stdout_fd = qemu_log;
  options.stderr_fd = qemu_log;
  options.die_with_parent = true;
  std::string line;
  for (const auto& a : argv) line += a + " ";
  log_line("starting " + line);
  Result<pid_t> pid = spawn(argv, options);
  if (qemu_log >= 0) ::close(qemu_log);
  if (!pid) {
    fail("can't start QEMU: " + pid.error());
    return false;
  }
  qemu_pid_ = *pid;
  qemu_started_ = std::chrono::steady_clock::now();
  return true;
}

// Listens on net.sock for QEMU's -netdev stream before QEMU starts (QEMU 7.2 connects
// once, at start-up) and gives the guest its addressing on the kernel command line.
bool Supervisor::start_network(MachineConfig& machine) {
  guest::EngineConfig net;
  net.socket_path = kNetSock;
  std::random_device random;
  net.net.isn_seed = (std::uint64_t{random()} << 32) | random();
  net.log = [](std::string_view line) { log_line("network: " + std::string(line)); };
  ::unlink(kNetSock);
  mitm::MitmContext::Options options;
  options.ca_common_name = "airlock VM CA " + config_.id;
  auto engine = policy::PolicyEngine::create(config_.network->network);
  if (!engine) {
    fail("can't set up the network policy: " + engine.error());
    return false;
  }
  auto context = mitm::MitmContext::create(*engine, options);
  if (!context) {
    fail("can't set up the network policy: " + context.error());
    return false;
  }
  mitm_ = std::move(*context);
  std::map<std::string, std::string> env = config_.env;
  for (auto& [k, v] : mitm_->guest_env()) env[k] = v;
  router_.set_base_env(std::move(env));
  try {
    guest::EventSink sink = [this](audit::Event event) {
      emit_event(event);
    };
    network_ = std::make_unique<guest::NetworkEngine>(io_, mitm_, net, sink);
    network_->start();
  } catch (const std::exception& e) {
    fail(std::string("can't set up the guest network: ") + e.what());
    return false;
  }
  auto text = [](netstack::Ipv4Address a) { return policy::IpAddress::v4(a).to_string(); };
  NetworkConfig nic;
  nic.socket_path = kNetSock;
  nic.mtu = net.net.mtu;
  nic.guest_ip = text(net.net.guest_ip) + "/" + std::to_string(std::popcount(net.net.netmask));
  nic.gateway_ip = text(net.net.gateway_ip);
  nic.dns = nic.gateway_ip;
  machine.network = nic;
  return true;
}

int Supervisor::run() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (!ec) on_signal(signo);
  });
  if (!prepare()) return exit_code_;
  // A child that exited before the signal_set existed would go unnoticed: check once.
  on_signal(SIGCHLD);
  start_accept();
  try_connect_ctl();
  boot_timer_.expires_after(config_.boot_timeout);
  boot_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || booted_ || qemu_pid_ < 0) return;
    const auto seconds = config_.boot_timeout.count() / 1000;
    fail("the VM did not boot within " + std::to_string(seconds) + " s (" +
         accel_name(config_.accel) + "); see " +
         (config_.home / "vms" / config_.id / kConsoleLog).string());
    ::kill(qemu_pid_, SIGKILL);
  });
  io_.run();
  if (qemu_pid_ > 0) {
    // Still running (io stopped by an error): don't leave it behind.
    ::kill(qemu_pid_, SIGKILL);
    waitpid(qemu_pid_, nullptr, 0);
  }
  return exit_code_;
}

void Supervisor::on_signal(int signo) {
  if (signo == SIGCHLD) {
    int status = 0;
    if (qemu_pid_ > 0 && waitpid(qemu_pid_, &status, WNOHANG) == qemu_pid_) on_qemu_exit(status);
  } else {
    log_line("signal " + std::to_string(signo) + ": stopping");
    begin_stop();
  }
  if (!exiting_) {
    signals_.async_wait([this](const boost::system::error_code& ec, int next) {
      if (!ec) on_signal(next);
    });
  }
}

void Supervisor::on_qemu_exit(int status) {
  qemu_pid_ = -1;
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  log_line("QEMU exited with " + std::to_string(code));
  if (!booted_ && state_.status != "failed") {
    std::string why = last_line_of(kQemuLog);
    fail("QEMU exited (code " + std::to_string(code) + ") before the guest booted" +
         (why.empty() ? "" : ": " + why) + "; see " +
         (config_.home / "vms" / config_.id / kConsoleLog).string());
  }
  nlohmann::json stopped = {{"event", "stopped"}, {"qemu_exit_code", code}, {"requested", stopping_}};
  if (network_) {
    // What the guest's network did, drops by reason included: nothing is dropped silently.
    stopped["network_counters"] = network_->counters_json();
  }
  emit_audit({{"type", "lifecycle"}, {"lifecycle", stopped}});
  if (state_.status != "failed") state_.status = "stopped";
  write_state();
  dispatch(router_.on_guest_lost("the VM stopped"));
  for (const auto& [client_id, channel] : stop_waiters_) {
    if (auto it = clients_.find(client_id); it != clients_.end()) {
      queue_client(it->second, Frame{FrameType::control, channel, R"({"op":"ok"})"});
    }
  }
  for (const auto& [client_id, channel] : event_followers_) {
    if (auto it = clients_.find(client_id); it != clients_.end()) {
      queue_client(it->second, Frame{FrameType::control, channel, R"({"op":"ok"})"});
    }
  }
  event_followers_.clear();
  finish();
}

void Supervisor::finish() {
  exiting_ = true;
  connect_timer_.cancel();
  boot_timer_.cancel();
  stop_timer_.cancel();
  boost::system::error_code ec;
  acceptor_.close(ec);
  ctl_.close(ec);
  signals_.cancel(ec);
  ::unlink(kApiSock);
  // Let queued replies drain, but never linger.
  std::vector<std::shared_ptr<Client>> idle;
  for (auto& [id, client] : clients_) {
    if (client->queue.empty()) idle.push_back(client);
  }
  for (auto& client : idle) close_client(client);
  exit_timer_.expires_after(std::chrono::seconds(2));
  exit_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) io_.stop();
  });
  if (clients_.empty()) io_.stop();
}

void Supervisor::begin_stop() {
  if (stopping_ || qemu_pid_ < 0) return;
  stopping_ = true;
  state_.status = "stopping";
  write_state();
  if (ctl_connected_ && booted_) {
    queue_ctl(Frame{FrameType::control, protocol::kConnectionChannel, R"({"op":"shutdown"})"});
    stop_stage_ = 1;
    stop_timer_.expires_after(config_.stop_grace);
  } else {
    stop_stage_ = 1;
    stop_timer_.expires_after(std::chrono::milliseconds(0));
  }
  stop_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) escalate_stop();
  });
}

void Supervisor::escalate_stop() {
  if (qemu_pid_ < 0) return;
  if (stop_stage_ == 1) {
    stop_stage_ = 2;
    log_line("guest did not power off in time: QMP quit");
    QmpClient qmp;
    Result<bool> connected = qmp.connect(kQmpSock, std::chrono::seconds(1));
    if (connected) (void)qmp.execute("quit", std::chrono::seconds(1));
    stop_timer_.expires_after(std::chrono::seconds(3));
  } else {
    log_line("QEMU still running: SIGKILL");
    ::kill(qemu_pid_, SIGKILL);
    return;
  }
  stop_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) escalate_stop();
  });
}

// ---- guest side ----------------------------------------------------------------------

void Supervisor::try_connect_ctl() {
  if (exiting_ || ctl_connected_) return;
  boost::system::error_code ec;
  if (!ctl_.is_open()) ctl_.open(local(), ec);
  if (!ec) ctl_.connect(local::endpoint(kCtlSock), ec);
  if (!ec) {
    ctl_connected_ = true;
    log_line("control channel connected");
    start_ctl_read();
    flush_ctl();
    return;
  }
  ctl_.close(ec);
  connect_timer_.expires_after(std::chrono::milliseconds(20));
  connect_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) try_connect_ctl();
  });
}

void Supervisor::start_ctl_read() {
  if (!ctl_connected_ || ctl_reading_ || exiting_) return;
  for (const auto& [id, client] : clients_) {
    if (client->queued > kClientHighWater) return;  // resumed by update_flow_control()
  }
  ctl_reading_ = true;
  ctl_.async_read_some(asio::buffer(ctl_buffer_), [this](const boost::system::error_code& ec,
                                                         std::size_t n) {
    ctl_reading_ = false;
    if (ec) {
      if (!exiting_) log_line("control channel closed: " + ec.message());
      ctl_connected_ = false;
      return;  // QEMU's exit (SIGCHLD) ends the VM
    }
    if (!ctl_decoder_.feed(std::string_view(ctl_buffer_.data(), n))) {
      log_line("guest sent a malformed frame (" + ctl_decoder_.error() + "): stopping the VM");
      begin_stop();
      return;
    }
    while (auto frame = ctl_decoder_.next()) {
      dispatch(router_.on_guest_frame(*frame, unix_millis()));
    }
    start_ctl_read();
  });
}

void Supervisor::queue_ctl(const Frame& frame) {
  if (frame.payload.size() > protocol::kMaxPayload) {
    log_line("dropping an oversized frame to the guest");
    return;
  }
  ctl_queue_.push_back(protocol::encode_frame(frame.type, frame.channel, frame.payload));
  ctl_queued_ += ctl_queue_.back().size();
  flush_ctl();
}

void Supervisor::flush_ctl() {
  if (!ctl_connected_ || ctl_writing_ || ctl_queue_.empty()) return;
  ctl_writing_ = true;
  asio::async_write(ctl_, asio::buffer(ctl_queue_.front()),
                    [this](const boost::system::error_code& ec, std::size_t) {
                      ctl_writing_ = false;
                      if (ec) {
                        ctl_connected_ = false;
                        return;
                      }
                      ctl_queued_ -= ctl_queue_.front().size();
                      ctl_queue_.pop_front();
                      update_flow_control();
                      flush_ctl();
                    });
}

void Supervisor::on_hello(const nlohmann::json& hello) {
  if (booted_) return;
  booted_ = true;
  boot_timer_.cancel();
  const auto boot_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - qemu_started_).count();
  nlohmann::json detail = {{"event", "booted"}, {"boot_ms", boot_ms}};
  if (auto g = hello.find("boot_ms"); g != hello.end() && g->is_number_unsigned()) {
    detail["guest_boot_ms"] = g->get<std::uint64_t>();
  }
  if (auto k = hello.find("kernel"); k != hello.end() && k->is_string() &&
                                     k->get<std::string>().size() < 256) {
    detail["kernel"] = k->get<std::string>();
  }
  log_line("guest booted in " + std::to_string(boot_ms) + " ms");
  emit_audit({{"type", "lifecycle"}, {"lifecycle", detail}});
  state_.status = stopping_ ? "stopping" : "running";
  state_.boot_ms = boot_ms;
  write_state();
  if (mitm_) {
    // The guest trusts the VM's CA before anyone can run a command in it.
    awaiting_trust_ = true;
    boot_report_ = {{"ok", true}, {"boot_ms", boot_ms}};
    queue_ctl(Frame{FrameType::control, protocol::kConnectionChannel,
                    nlohmann::json{{"op", "trust_ca"}, {"pem", mitm_->ca().certificate_pem()}}.dump()});
    return;
  }
  report_ready({{"ok", true}, {"boot_ms", boot_ms}});
}

void Supervisor::on_setup_reply(const nlohmann::json& reply) {
  if (!awaiting_trust_) return;
  awaiting_trust_ = false;
  if (reply.value("op", "") != "trust_ca.ok") {
    fail("the guest could not trust the VM's CA: " + reply.value("message", ""));
    begin_stop();
    return;
  }
  log_line("guest trusts the VM's CA");
  report_ready(boot_report_);
}

// ---- client side ---------------------------------------------------------------------

void Supervisor::start_accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, local::socket socket) {
    if (ec) return;  // closed at exit
    if (clients_.size() >= kMaxClients) {
      boost::system::error_code ignored;
      socket.close(ignored);
    } else {
      auto client = std::make_shared<Client>(next_client_++, std::move(socket));
      clients_[client->id] = client;
      start_client_read(client);
    }
    start_accept();
  });
}

void Supervisor::start_client_read(const std::shared_ptr<Client>& client) {
  if (client->closed || client->reading || ctl_queued_ > kGuestHighWater || exiting_) return;
  client->reading = true;
  client->socket.async_read_some(
      asio::buffer(client->buffer), [this, client](const boost::system::error_code& ec, std::size_t n) {
        client->reading = false;
        if (client->closed) return;
        if (ec || !client->decoder.feed(std::string_view(client->buffer.data(), n))) {
          close_client(client);
          return;
        }
        while (auto frame = client->decoder.next()) {
          Router::Outputs outputs = router_.on_client_frame(client->id, *frame, unix_millis());
          for (auto& o : outputs) {
            if (o.kind == RouterOutput::Kind::host_request) {
              handle_host_request(client, o.frame.channel, o.json);
            }
          }
          dispatch(outputs);
        }
        start_client_read(client);
      });
}

void Supervisor::queue_client(const std::shared_ptr<Client>& client, const Frame& frame) {
  if (client->closed) return;
  if (frame.payload.size() > protocol::kMaxPayload) {
    log_line("dropping an oversized frame to a client");
    return;
  }
  client->queue.push_back(protocol::encode_frame(frame.type, frame.channel, frame.payload));
  client->queued += client->queue.back().size();
  flush_client(client);
}

void Supervisor::flush_client(const std::shared_ptr<Client>& client) {
  if (client->closed || client->writing || client->queue.empty()) return;
  client->writing = true;
  asio::async_write(client->socket, asio::buffer(client->queue.front()),
                    [this, client](const boost::system::error_code& ec, std::size_t) {
                      client->writing = false;
                      if (client->closed) return;
                      if (ec) {
                        close_client(client);
                        return;
                      }
                      client->queued -= client->queue.front().size();
                      client->queue.pop_front();
                      if (exiting_ && client->queue.empty()) {
                        close_client(client);
                        return;
                      }
                      update_flow_control();
                      flush_client(client);
                    });
}

void Supervisor::close_client(const std::shared_ptr<Client>& client) {
  if (client->closed) return;
  client->closed = true;
  boost::system::error_code ec;
  client->socket.close(ec);
  clients_.erase(client->id);
  std::erase_if(event_followers_, [&](const auto& f) { return f.first == client->id; });
  std::erase_if(stop_waiters_, [&](const auto& f) { return f.first == client->id; });
  if (!exiting_) {
    dispatch(router_.on_client_closed(client->id));
    update_flow_control();
  } else if (clients_.empty()) {
    io_.stop();
  }
}

void Supervisor::update_flow_control() {
  start_ctl_read();
  if (ctl_queued_ <= kGuestHighWater) {
    for (auto& [id, client] : clients_) start_client_read(client);
  }
}

void Supervisor::handle_host_request(const std::shared_ptr<Client>& client, std::uint32_t channel,
                                     const nlohmann::json& request) {
  const std::string op = request.value("op", "");
  if (op == "status") {
    nlohmann::json reply = {{"op", "ok"}, {"id", config_.id}, {"status", state_.status},
                            {"accel", accel_name(config_.accel)}, {"image", config_.image}};
    if (state_.boot_ms) reply["boot_ms"] = *state_.boot_ms;
    QmpClient qmp;
    if (qemu_pid_ > 0 && qmp.connect(kQmpSock, std::chrono::milliseconds(500))) {
      if (auto s = qmp.execute("query-status", std::chrono::milliseconds(500)); s && s->is_object()) {
        reply["qemu_status"] = s->value("status", "");
      }
    }
    queue_client(client, Frame{FrameType::control, channel, reply.dump()});
  } else if (op == "stop") {
    stop_waiters_.emplace_back(client->id, channel);
    begin_stop();
  } else if (op == "events") {
    std::uint64_t from = 0;
    if (auto f = request.find("from_seq"); f != request.end() && f->is_number_unsigned()) {
      from = f->get<std::uint64_t>();
    }
    std::ifstream in(kEvents);
    std::string line;
    while (std::getline(in, line)) {
      auto event = nlohmann::json::parse(line, nullptr, false);
      if (event.is_discarded() || !event.is_object()) continue;
      if (event.value("seq", std::uint64_t{0}) < from) continue;
      queue_client(client, Frame{FrameType::control, channel, event_message(line)});
    }
    if (request.value("follow", false) && !exiting_) {
      event_followers_.emplace_back(client->id, channel);
    } else {
      queue_client(client, Frame{FrameType::control, channel, R"({"op":"ok"})"});
    }
  }
}

void Supervisor::dispatch(const Router::Outputs& outputs) {
  for (const auto& o : outputs) {
    switch (o.kind) {
      case RouterOutput::Kind::to_guest:
        queue_ctl(o.frame);
        break;
      case RouterOutput::Kind::to_client:
        if (auto it = clients_.find(o.client); it != clients_.end()) queue_client(it->second, o.frame);
        break;
      case RouterOutput::Kind::host_request:
        break;  // handled by the caller, which knows the client object
      case RouterOutput::Kind::audit:
        emit_audit(o.json);
        break;
      case RouterOutput::Kind::hello:
        on_hello(o.json);
        break;
      case RouterOutput::Kind::setup_reply:
        on_setup_reply(o.json);
        break;
      case RouterOutput::Kind::guest_log:
        log_line("guest " + o.json.value("level", "") + ": " + o.json.value("message", ""));
        break;
    }
  }
}

}  // namespace

int run_supervisor(const SupervisorConfig& config, int ready_fd) {
  Supervisor supervisor(config, ready_fd);
  try {
    return supervisor.run();
  } catch (const std::exception& e) {
    log_line(std::string("fatal: ") + e.what());
    return 1;
  }
}

}  // namespace airlock::runtime
