// The supervisor's composition: the services of supervisor.hpp wired on one loop.
#include "runtime/vm/supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

// GCC 12's flow analysis reports a "potential null dereference" inside Asio's scheduler
// once it is inlined here; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio.hpp>

#include "protocol/frame.hpp"
#include "runtime/vm/api_server.hpp"
#include "runtime/vm/event_service.hpp"
#include "runtime/vm/guest_channel.hpp"
#include "runtime/vm/host_ops.hpp"
#include "runtime/vm/host_tsc.hpp"
#include "runtime/vm/lifecycle_service.hpp"
#include "runtime/vm/network_service.hpp"
#include "runtime/vm/qemu_argv.hpp"
#include "runtime/vm/router.hpp"
#include "runtime/vm/vm_store.hpp"

namespace airlock::runtime {

namespace asio = boost::asio;
using protocol::Frame;
using protocol::FrameType;

namespace {

// AIRLOCK_FAULT_AUDIT_STALL_MS: the supervisor sleeps this long before each batch of the
// network's events (tests of the audit queue's block and drop modes).
std::chrono::milliseconds fault_audit_stall() {
  const char* v = std::getenv("AIRLOCK_FAULT_AUDIT_STALL_MS");
  if (v == nullptr || *v == '\0') return std::chrono::milliseconds(0);
  char* end = nullptr;
  const long ms = std::strtol(v, &end, 10);
  return std::chrono::milliseconds(*end == '\0' && ms > 0 && ms <= 10000 ? ms : 0);
}

// Relative names: the supervisor runs inside the VM directory.
constexpr const char* kApiSock = "api.sock";
constexpr const char* kCtlSock = "ctl.sock";
constexpr const char* kQmpSock = "qmp.sock";
constexpr const char* kNetSock = "net.sock";
constexpr const char* kConsoleLog = "console.log";
constexpr const char* kDisk = "disk.qcow2";
constexpr const char* kEvents = "events.jsonl";
constexpr const char* kQemuLog = "qemu.log";

constexpr std::size_t kClientHighWater = 4u << 20;  // pause guest reads above this backlog
constexpr std::size_t kGuestHighWater = 4u << 20;   // pause client reads above this backlog
constexpr std::size_t kReplayBatchBytes = 256u << 10;  // events replayed per loop turn
// The guest's sandbox user: a mounted folder's owner is shown to the guest as this uid.
constexpr std::uint32_t kSandboxUid = 1000;

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
std::string event_message(const std::string& line) { return R"({"op":"event","event":)" + line + "}"; }

Frame reply_frame(std::uint32_t channel, const nlohmann::json& j) {
  return Frame{FrameType::control, channel, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

class Supervisor {
 public:
  Supervisor(const SupervisorConfig& config, int ready_fd)
      : config_(config), ready_fd_(ready_fd), signals_(io_, SIGCHLD, SIGTERM, SIGINT),
        api_(io_, api_handlers()), guest_(io_, kCtlSock, guest_handlers()),
        lifecycle_(io_, config, lifecycle_hooks()) {
    signals_.add(SIGHUP);
  }

  int run();

 private:
  ApiServer::Handlers api_handlers();
  GuestChannel::Handlers guest_handlers();
  LifecycleService::Hooks lifecycle_hooks();

  bool prepare();
  bool start_network(MachineConfig& machine);
  void report_ready(const nlohmann::json& report);
  void fail(const std::string& error);
  void audit(const nlohmann::json& body) {
    if (events_.append(body, unix_millis()).empty()) log_line("can't append to events.jsonl: " + events_.error());
    check_audit_disk();
  }
  void take_network_events();
  void tick();
  void check_audit_disk();
  void on_signal(int signo);
  void on_qemu_exit(int code);
  void record_stop(int code);
  void finish();

  void on_client_frame(ClientId client, Frame frame);
  void on_client_closed(ClientId client);
  void on_host_request(ClientId client, std::uint32_t channel, const nlohmann::json& request);
  void replay_events(ClientId client, std::uint32_t channel, std::uint64_t next, bool follow);
  void dispatch(const Router::Outputs& outputs);
  void on_hello(const nlohmann::json& hello);
  void on_setup_reply(const nlohmann::json& reply);
  void update_flow_control();

  const SupervisorConfig& config_;
  int ready_fd_;
  asio::io_context io_;
  asio::signal_set signals_;
  asio::steady_timer exit_timer_{io_};
  asio::steady_timer tick_timer_{io_};  // the router's liveness probe

  EventService events_;
  ApiServer api_;
  GuestChannel guest_;
  LifecycleService lifecycle_;
  Router router_;
  std::unique_ptr<NetworkService> network_;

  struct Follower {
    ClientId client;
    std::uint32_t channel;
    EventService::SubscriberId subscription;
  };
  std::vector<Follower> followers_;
  std::vector<std::pair<ClientId, std::uint32_t>> stop_waiters_;
  nlohmann::json boot_report_;  // held until the guest trusts the CA
  bool awaiting_trust_ = false;
  bool booted_ = false;
  bool audit_disk_full_ = false;
  std::chrono::milliseconds audit_stall_ = fault_audit_stall();
  bool exiting_ = false;
  int exit_code_ = 0;
};

ApiServer::Handlers Supervisor::api_handlers() {
  ApiServer::Handlers h;
  h.on_frame = [this](ClientId client, Frame frame) { on_client_frame(client, std::move(frame)); };
  h.on_closed = [this](ClientId client) { on_client_closed(client); };
  h.on_drained = [this] { update_flow_control(); };
  h.log = log_line;
  return h;
}

GuestChannel::Handlers Supervisor::guest_handlers() {
  GuestChannel::Handlers h;
  h.on_connected = [] { log_line("control channel connected"); };
  h.on_frame = [this](Frame frame) { dispatch(router_.on_guest_frame(frame, unix_millis())); };
  h.on_broken = [this](const std::string& why) {
    log_line("guest sent a malformed frame (" + why + "): stopping the VM");
    lifecycle_.begin_stop();
  };
  h.on_drained = [this] { update_flow_control(); };
  return h;
}

LifecycleService::Hooks Supervisor::lifecycle_hooks() {
  LifecycleService::Hooks h;
  h.power_off_guest = [this] {
    if (!guest_.connected()) return false;
    guest_.send(Frame{FrameType::control, protocol::kConnectionChannel, R"({"op":"shutdown"})"});
    return true;
  };
  h.on_exit = [this](int code) { on_qemu_exit(code); };
  h.on_boot_timeout = [this] {
    const auto seconds = config_.boot_timeout.count() / 1000;
    fail("the VM did not boot within " + std::to_string(seconds) + " s (" + accel_name(config_.accel) +
         "); see " + (config_.home / "vms" / config_.id / kConsoleLog).string());
  };
  h.log = log_line;
  return h;
}

void Supervisor::report_ready(const nlohmann::json& report) {
  if (ready_fd_ < 0) return;
  const std::string line = report.dump() + "\n";
  (void)!write(ready_fd_, line.data(), line.size());
  close(ready_fd_);
  ready_fd_ = -1;
}

void Supervisor::fail(const std::string& error) {
  if (!lifecycle_.failed())  // the run's end is recorded (once), when the log could be opened
    audit({{"type", "lifecycle"}, {"lifecycle", {{"event", "failed"}, {"error", error}}}});
  lifecycle_.fail(error);
  report_ready({{"ok", false}, {"error", error}});
  exit_code_ = 1;
}

bool Supervisor::prepare() {
  if (!events_.open(kEvents, config_.id)) {
    fail("can't open events.jsonl");
    return false;
  }
  if (events_.previous_run_unrecorded()) {
    // The last run's supervisor died without its last word (killed, crashed): said now,
    // so no run ends unrecorded. Its open execs and flows have no records of their own.
    audit({{"type", "lifecycle"},
           {"lifecycle", {{"event", "stopped"}, {"requested", false}, {"error", "supervisor_lost"},
                          {"detail", "the previous run ended without recording its stop (its supervisor was "
                                     "killed or crashed); what was running then has no record of its end"}}}});
  }
  if (config_.restart) {
    audit({{"type", "lifecycle"}, {"lifecycle", {{"event", "started"}, {"image", config_.image},
                                                 {"accel", accel_name(config_.accel)}}}});
  } else {
    audit({{"type", "lifecycle"}, {"lifecycle", {{"event", "created"}, {"image", config_.image},
                                                 {"accel", accel_name(config_.accel)}}}});
  }
  log_line("accelerator " + std::string(accel_name(config_.accel)) + ": " + config_.accel_reason);
  router_.set_base_env(config_.policy.env);  // start_network adds the network's variables
  if (Result<bool> disk = lifecycle_.prepare_disk(); !disk) {
    fail(disk.error());
    return false;
  }
  if (Result<bool> listening = api_.listen(kApiSock); !listening) {
    fail(listening.error());
    return false;
  }

  MachineConfig machine;
  machine.id = config_.id;
  machine.qemu_binary = config_.qemu_binary;
  machine.kernel = config_.kernel;
  machine.initramfs = config_.initramfs;
  machine.disk = kDisk;
  machine.cpus = config_.policy.resources.cpus;
  machine.memory_mb = config_.policy.resources.memory_mb;
  machine.accel = config_.accel;
  if (config_.accel == Accel::tcg) machine.tsc_khz = measure_host_tsc_khz();
  for (std::size_t i = 0; i < config_.policy.vfs.mounts.size(); ++i) {
    const auto& m = config_.policy.vfs.mounts[i];
    machine.mounts.push_back({"fs" + std::to_string(i), m.host_path, m.guest_path, m.readonly});
  }
  machine.workspace = config_.policy.vfs.workspace;
  machine.hostname = config_.hostname;
  for (const HostAlias& h : config_.add_hosts) machine.extra_hosts.emplace_back(h.name, h.address);
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
  // Mounted folders: QEMU runs in a user namespace in which the user who runs airlock is
  // the guest's sandbox uid. QEMU's 9p server then reports that user's files as the
  // sandbox user's (the guest checks permissions itself, against the owner it is shown),
  // and what the guest creates lands on the host owned by that user. Nothing else is
  // mapped, so QEMU has no privilege over anyone else's files even when airlock runs as
  // root, and readonly=on still makes QEMU refuse every write to a read-only share.
  std::optional<UserNamespace> user_namespace;
  if (!machine.mounts.empty()) {
    if (user_namespaces_work()) {
      user_namespace = UserNamespace{kSandboxUid, kSandboxUid};
      log_line("mounts: QEMU runs in a user namespace; uid " + std::to_string(geteuid()) +
               " is the guest's uid " + std::to_string(kSandboxUid));
    } else {
      log_line("mounts: user namespaces are unavailable; mounted folders keep their host owners");
    }
  }
  if (Result<bool> started = lifecycle_.start(argv, user_namespace); !started) {
    fail(started.error());
    return false;
  }
  return true;
}

// Listens on net.sock for QEMU's -netdev stream before QEMU starts and gives the guest
// its addressing on the kernel command line.
bool Supervisor::start_network(MachineConfig& machine) {
  NetworkServiceConfig net;
  net.socket_path = kNetSock;
  net.vm_id = config_.id;
  net.log = [](std::string_view line) { log_line(std::string(line)); };
  // Called on the network's thread when a batch waits: this loop, the only writer, takes it.
  net.on_events = [this] { asio::post(io_, [this] { take_network_events(); }); };
  network_ = std::make_unique<NetworkService>(config_.policy, std::move(net));
  if (Result<bool> started = network_->start(); !started) {
    fail(started.error());
    return false;
  }
  std::map<std::string, std::string> env = config_.policy.env;
  for (const auto& [k, v] : network_->guest_env()) env[k] = v;
  router_.set_base_env(std::move(env));
  machine.network = network_->guest_nic();
  return true;
}

int Supervisor::run() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (!ec) on_signal(signo);
  });
  if (!prepare()) {
    if (network_) network_->stop();
    return exit_code_;
  }
  // A child that exited before the signal_set existed would go unnoticed: check once.
  lifecycle_.on_child_exited();
  guest_.connect_when_ready();
  tick();
  for (;;) {
    try {
      io_.run();
      break;
    } catch (const std::exception& e) {
      // Every client and guest input is validated before it is acted on; should a
      // handler still throw, the VM stays up and the error is on record.
      log_line(std::string("error in a handler: ") + e.what());
    }
  }
  if (network_) {
    network_->stop();
    take_network_events();
  }
  lifecycle_.shut_down();
  return exit_code_;
}

void Supervisor::on_signal(int signo) {
  if (signo == SIGCHLD) {
    lifecycle_.on_child_exited();
  } else {
    log_line("signal " + std::to_string(signo) + ": stopping");
    lifecycle_.begin_stop();
  }
  if (!exiting_) {
    signals_.async_wait([this](const boost::system::error_code& ec, int next) {
      if (!ec) on_signal(next);
    });
  }
}

void Supervisor::on_qemu_exit(int code) {
  if (!booted_ && !lifecycle_.failed()) {
    std::string why = last_line_of(kQemuLog);
    fail("QEMU exited (code " + std::to_string(code) + ") before the guest booted" +
         (why.empty() ? "" : ": " + why) + "; see " +
         (config_.home / "vms" / config_.id / kConsoleLog).string());
  }
  if (network_) network_->stop();
  // After the network's last events, which its thread has posted to this loop already.
  asio::post(io_, [this, code] { record_stop(code); });
}

// About once a second: the router probes a guest that has gone quiet while requests wait.
void Supervisor::tick() {
  if (exiting_) return;
  if (booted_) dispatch(router_.on_tick(unix_millis()));  // before boot, the boot watchdog rules
  tick_timer_.expires_after(std::chrono::seconds(1));
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void Supervisor::take_network_events() {
  if (!network_) return;
  // Fault injection for tests: a writer this slow (a stalled disk) per batch.
  if (audit_stall_.count() > 0) std::this_thread::sleep_for(audit_stall_);
  for (const audit::Event& event : network_->take_events()) {
    if (events_.append(event, unix_millis()).empty()) log_line("can't append to events.jsonl: " + events_.error());
  }
  check_audit_disk();
}

// A full disk leaves the audit log the reserve's room for its last word: the guest's
// network stops first (no egress goes unrecorded), then the VM, and the log says why.
void Supervisor::check_audit_disk() {
  if (!events_.disk_full() || audit_disk_full_) return;
  audit_disk_full_ = true;
  log_line("the audit log's disk is full (" + events_.error() +
           "): stopping the guest network and the VM so that nothing goes unrecorded");
  if (network_) {
    network_->stop();
    take_network_events();
  }
  audit({{"type", "lifecycle"},
         {"lifecycle", {{"event", "audit_disk_full"}, {"error", events_.error()}, {"action", "stopping"}}}});
  lifecycle_.begin_stop();
}

void Supervisor::record_stop(int code) {
  // The execs that die with the VM are recorded before the VM's own last word; their
  // clients hear of it after the state says stopped, so one that starts the VM again at
  // once finds it stopped.
  Router::Outputs records, replies;
  for (RouterOutput& o : router_.on_guest_lost("the VM stopped", unix_millis()))
    (o.kind == RouterOutput::Kind::audit ? records : replies).push_back(std::move(o));
  dispatch(records);
  take_network_events();
  nlohmann::json stopped = {{"event", "stopped"}, {"qemu_exit_code", code}, {"requested", lifecycle_.stopping()}};
  if (network_) stopped["network_counters"] = network_->counters_json();
  audit({{"type", "lifecycle"}, {"lifecycle", stopped}});
  if (!lifecycle_.failed()) lifecycle_.state().status = "stopped";
  lifecycle_.save_state();
  dispatch(replies);
  for (const auto& [client, channel] : stop_waiters_) api_.send(client, reply_frame(channel, {{"op", "ok"}}));
  stop_waiters_.clear();
  for (const Follower& f : followers_) {
    events_.unsubscribe(f.subscription);
    api_.send(f.client, reply_frame(f.channel, {{"op", "ok"}}));
  }
  followers_.clear();
  finish();
}

void Supervisor::finish() {
  exiting_ = true;
  tick_timer_.cancel();
  guest_.close();
  boost::system::error_code ec;
  signals_.cancel(ec);
  ::unlink(kApiSock);
  // Let queued replies drain, but never linger.
  api_.shut_down([this] { io_.stop(); });
  exit_timer_.expires_after(std::chrono::seconds(2));
  exit_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) io_.stop();
  });
}

// ---- clients ----------------------------------------------------------------------------

void Supervisor::on_client_frame(ClientId client, Frame frame) {
  Router::Outputs outputs = router_.on_client_frame(client, frame, unix_millis());
  for (auto& o : outputs) {
    if (o.kind == RouterOutput::Kind::host_request) on_host_request(o.client, o.frame.channel, o.json);
  }
  dispatch(outputs);
}

void Supervisor::on_client_closed(ClientId client) {
  std::erase_if(followers_, [&](const Follower& f) {
    if (f.client != client) return false;
    events_.unsubscribe(f.subscription);
    return true;
  });
  std::erase_if(stop_waiters_, [&](const auto& w) { return w.first == client; });
  if (!exiting_) {
    dispatch(router_.on_client_closed(client));
    update_flow_control();
  }
}

void Supervisor::on_host_request(ClientId client, std::uint32_t channel, const nlohmann::json& request) {
  auto parsed = parse_host_op(request);
  if (auto* why = std::get_if<std::string>(&parsed)) {
    api_.send(client, reply_frame(channel, {{"op", "error"}, {"code", "invalid"}, {"message", *why}}));
    return;
  }
  const HostOp& op = std::get<HostOp>(parsed);
  if (std::holds_alternative<StatusOp>(op)) {
    // QEMU's own status comes from QMP, on the QMP worker's thread; the reply follows.
    lifecycle_.status([this, client, channel](nlohmann::json reply) { api_.send(client, reply_frame(channel, reply)); });
  } else if (std::holds_alternative<StopOp>(op)) {
    if (exiting_) {
      api_.send(client, reply_frame(channel, {{"op", "ok"}}));
      return;
    }
    stop_waiters_.emplace_back(client, channel);
    lifecycle_.begin_stop();
  } else {
    const EventsOp& events = std::get<EventsOp>(op);
    replay_events(client, channel, events.from_seq, events.follow);
  }
}

// Serves the log from `next` on in bounded batches, yielding to the loop between them
// and waiting while the client is behind; once caught up, follows (or ends) in the same
// turn, so the live stream starts exactly where the replay ended.
void Supervisor::replay_events(ClientId client, std::uint32_t channel, std::uint64_t next, bool follow) {
  if (!api_.connected(client)) return;
  if (api_.backlog(client) > kClientHighWater) {
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(5));
    timer->async_wait([this, timer, client, channel, next, follow](const boost::system::error_code& ec) {
      if (!ec) replay_events(client, channel, next, follow);
    });
    return;
  }
  EventService::Batch batch = events_.read_from(next, kReplayBatchBytes);
  for (const std::string& line : batch.lines) {
    api_.send(client, Frame{FrameType::control, channel, event_message(line)});
  }
  if (!batch.lines.empty()) {
    asio::post(io_, [this, client, channel, next = batch.next_seq, follow] {
      replay_events(client, channel, next, follow);
    });
    return;
  }
  if (!follow || exiting_) {
    api_.send(client, reply_frame(channel, {{"op", "ok"}}));
    return;
  }
  const auto id = events_.subscribe([this, client, channel](const std::string& line) {
    api_.send(client, Frame{FrameType::control, channel, event_message(line)});
  });
  followers_.push_back({client, channel, id});
}

void Supervisor::update_flow_control() {
  guest_.set_reading(api_.max_backlog() <= kClientHighWater);
  api_.set_reading(guest_.backlog() <= kGuestHighWater);
}

void Supervisor::dispatch(const Router::Outputs& outputs) {
  for (const auto& o : outputs) {
    switch (o.kind) {
      case RouterOutput::Kind::to_guest:
        guest_.send(o.frame);
        break;
      case RouterOutput::Kind::to_client:
        api_.send(o.client, o.frame);
        break;
      case RouterOutput::Kind::host_request:
        break;  // handled by on_client_frame
      case RouterOutput::Kind::audit:
        audit(o.json);
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
  update_flow_control();
}

// ---- guest ------------------------------------------------------------------------------

void Supervisor::on_hello(const nlohmann::json& hello) {
  if (booted_) return;
  booted_ = true;
  const auto boot_ms = lifecycle_.since_start().count();
  nlohmann::json detail = {{"event", "booted"}, {"boot_ms", boot_ms}};
  if (auto g = hello.find("boot_ms"); g != hello.end() && g->is_number_unsigned()) {
    detail["guest_boot_ms"] = g->get<std::uint64_t>();
  }
  if (auto k = hello.find("kernel"); k != hello.end() && k->is_string() && k->get<std::string>().size() < 256) {
    detail["kernel"] = k->get<std::string>();
  }
  log_line("guest booted in " + std::to_string(boot_ms) + " ms");
  audit({{"type", "lifecycle"}, {"lifecycle", detail}});
  lifecycle_.booted(boot_ms);
  if (network_) {
    // The guest trusts the VM's CA before anyone can run a command in it.
    awaiting_trust_ = true;
    boot_report_ = {{"ok", true}, {"boot_ms", boot_ms}};
    guest_.send(reply_frame(protocol::kConnectionChannel, {{"op", "trust_ca"}, {"pem", network_->ca_pem()}}));
    return;
  }
  report_ready({{"ok", true}, {"boot_ms", boot_ms}});
}

void Supervisor::on_setup_reply(const nlohmann::json& reply) {
  if (!awaiting_trust_) return;
  awaiting_trust_ = false;
  if (reply.value("op", "") != "trust_ca.ok") {
    fail("the guest could not trust the VM's CA: " + reply.value("message", ""));
    lifecycle_.begin_stop();
    return;
  }
  log_line("guest trusts the VM's CA");
  report_ready(boot_report_);
}

}  // namespace

int run_supervisor(const SupervisorConfig& config, int ready_fd) {
  try {
    Supervisor supervisor(config, ready_fd);
    return supervisor.run();
  } catch (const std::exception& e) {
    log_line(std::string("fatal: ") + e.what());
    return 1;
  }
}

}  // namespace airlock::runtime
