// The VM commands: run, create, exec, cp, ls, stop, rm, logs, events, image.
//
// Every command resolves the airlock home, finds its VM by id (or unique prefix) and talks
// to that VM's supervisor over api.sock (runtime/vm/client.hpp); create and run start a
// supervisor with launch_vm(). Exit codes: the command's own for run/exec, 125 for
// airlock's failures (unknown VM, missing image, VM that won't boot), 2 for policy and
// flag errors. Limits: cp copies single files. The VM's NIC and its policed network come
// from the supervisor (proxy/relay); --no-network leaves the NIC out.
#include "runtime/cli/vm_commands.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "policy/loader.hpp"
#include "runtime/vm/accel.hpp"
#include "runtime/vm/audit_log.hpp"
#include "runtime/vm/client.hpp"
#include "runtime/vm/command_helpers.hpp"
#include "runtime/vm/supervisor.hpp"
#include "runtime/vm/vm_store.hpp"
#ifdef AIRLOCK_HAVE_IMAGES
#include "images/image_store.hpp"
#endif

namespace airlock::cli {

namespace fs = std::filesystem;
using runtime::ApiClient;

namespace {

// A failure of airlock itself: reported as one line, exit 125.
struct CommandError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

bool debug_enabled() {
  const char* d = std::getenv("AIRLOCK_DEBUG");
  return d != nullptr && *d != '\0' && std::string(d) != "0";
}

void debug(const std::string& line) {
  if (debug_enabled()) std::cerr << "airlock: debug: " << line << "\n";
}

// Runs a command body, mapping exceptions to the shared exit codes.
template <typename F>
void guarded(F&& body) {
  try {
    set_exit_code(body());
  } catch (const policy::PolicyError& e) {
    std::cerr << "airlock: " << e.what() << "\n";
    set_exit_code(kExitUsage);
  } catch (const std::exception& e) {
    std::cerr << "airlock: " << e.what() << "\n";
    set_exit_code(kExitRuntime);
  }
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;  // a closed pipe downstream: drop the rest, as cat would
    data.remove_prefix(static_cast<std::size_t>(w));
  }
}

// ---- images ---------------------------------------------------------------------------

struct ImagePaths {
  std::string name;
  fs::path kernel, initramfs, rootfs;
};

ImagePaths resolve_image(const fs::path& home, const std::string& name) {
#ifdef AIRLOCK_HAVE_IMAGES
  images::ImageStore store(home);
  images::BuildOptions options;
  options.progress = [](std::string_view line) { std::cerr << "image: " << line << "\n"; };
  Result<images::ImageInfo> info = store.ensure(name, options);
  if (!info) throw CommandError("image '" + name + "': " + info.error());
  // The uncompressed kernel boots through its PVH entry, skipping decompression.
  std::error_code ec;
  const bool pvh = !info->vmlinux.empty() && fs::exists(info->vmlinux, ec);
  return {info->name, pvh ? info->vmlinux : info->kernel, info->initramfs, info->rootfs};
#else
  const fs::path dir = home / "images" / name;
  ImagePaths p{name, fs::exists(dir / "vmlinux") ? dir / "vmlinux" : dir / "vmlinuz",
               dir / "initramfs.cpio.gz", dir / "rootfs.img"};
  for (const auto& f : {p.kernel, p.initramfs, p.rootfs}) {
    if (!fs::exists(f)) {
      throw CommandError("image '" + name + "' is missing " + f.string() +
                         " (build it with: airlock image build " + name + ")");
    }
  }
  return p;
#endif
}

// ---- VMs ------------------------------------------------------------------------------

struct VmRef {
  std::string id;
  runtime::VmPaths paths;
};

VmRef find_vm(const fs::path& home, const std::string& wanted) {
  Result<std::string> id = runtime::resolve_vm_id(wanted, runtime::list_vm_ids(home));
  if (!id) throw CommandError(id.error());
  return {*id, runtime::vm_paths(home, *id)};
}

struct VmLiveness {
  std::optional<runtime::VmState> state;
  std::string state_error;
  bool alive = false;
};

VmLiveness inspect(const VmRef& vm) {
  VmLiveness l;
  Result<runtime::VmState> s = runtime::read_vm_state(vm.paths.state);
  if (!s) {
    l.state_error = s.error();
    return l;
  }
  l.alive = runtime::process_alive(s->pid);
  l.state = std::move(*s);
  return l;
}

ApiClient connect_running(const VmRef& vm) {
  VmLiveness l = inspect(vm);
  if (!l.state) throw CommandError(l.state_error);
  if (!l.alive) throw CommandError("VM " + vm.id + " is not running");
  Result<ApiClient> client = ApiClient::connect(vm.paths.api_sock);
  if (!client) throw CommandError("VM " + vm.id + " is not reachable: " + client.error());
  return std::move(*client);
}

std::chrono::milliseconds boot_timeout(runtime::Accel accel) {
  if (const char* t = std::getenv("AIRLOCK_BOOT_TIMEOUT"); t != nullptr && *t != '\0') {
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::atof(t) * 1000));
  }
  return accel == runtime::Accel::kvm ? std::chrono::seconds(30) : std::chrono::seconds(60);
}

// The normalised config recorded in state.json: no env values (they may be secrets).
nlohmann::json config_json(const policy::Policy& p) {
  nlohmann::json mounts = nlohmann::json::array();
  for (const auto& m : p.vfs.mounts) {
    mounts.push_back({{"guest_path", m.guest_path}, {"host_path", m.host_path.string()},
                      {"readonly", m.readonly}});
  }
  nlohmann::json env = nlohmann::json::object();
  for (const auto& [k, v] : p.env) env[k] = std::string(policy::SecretValue::kRedacted);
  return {{"image", p.image},
          {"resources", {{"cpus", p.resources.cpus}, {"memory_mb", p.resources.memory_mb},
                         {"disk_size_mb", p.resources.disk_size_mb},
                         {"timeout_seconds", p.resources.timeout_seconds}}},
          {"vfs", {{"workspace", p.vfs.workspace}, {"mounts", mounts}}},
          {"env", env},
          {"policy_file", p.source}};
}

runtime::LaunchResult create_vm(const policy::Policy& p, bool network) {
  const fs::path home = runtime::airlock_home();
  const ImagePaths image = resolve_image(home, p.image);

  runtime::AccelProbeInputs probe;
  probe.kernel = image.kernel;
  probe.initramfs = image.initramfs;
  probe.cache_file = home / "accel.json";
  if (const char* a = std::getenv("AIRLOCK_ACCEL")) probe.request = a;
  if (const char* q = std::getenv("AIRLOCK_QEMU"); q != nullptr && *q != '\0') probe.qemu_binary = q;
  Result<runtime::AccelChoice> accel = runtime::choose_accel(probe);
  if (!accel) throw CommandError(accel.error());
  debug(std::string("accelerator ") + runtime::accel_name(accel->accel) + ": " + accel->reason +
        (accel->from_cache ? " (cached)" : ""));

  runtime::SupervisorConfig config;
  config.home = home;
  config.image = image.name;
  config.kernel = image.kernel;
  config.initramfs = image.initramfs;
  config.rootfs = image.rootfs;
  config.cpus = p.resources.cpus;
  config.memory_mb = p.resources.memory_mb;
  config.disk_size_mb = p.resources.disk_size_mb;
  config.workspace = p.vfs.workspace;
  for (std::size_t i = 0; i < p.vfs.mounts.size(); ++i) {
    const auto& m = p.vfs.mounts[i];
    config.mounts.push_back({"fs" + std::to_string(i), m.host_path, m.guest_path, m.readonly});
  }
  config.accel = accel->accel;
  config.accel_reason = accel->reason;
  config.boot_timeout = boot_timeout(accel->accel);
  config.qemu_binary = probe.qemu_binary;
  config.config_json = config_json(p);
  config.config_json["network"] = network;
  config.env = p.env;
  if (network) config.network = p;
  // Benchmarks only (bench/net): the same VM on QEMU's unpoliced user-mode network.
  if (const char* n = std::getenv("AIRLOCK_BENCH_QEMU_USER_NET"); network && n && std::string(n) == "1") {
    config.network.reset();
    config.qemu_user_network = true;
    config.config_json["network"] = "qemu-user (benchmark)";
  }
  Result<runtime::LaunchResult> launched = runtime::launch_vm(config);
  if (!launched) throw CommandError(launched.error());
  debug("VM " + launched->id + " booted in " + std::to_string(launched->boot_ms) + " ms");
  return *launched;
}

// Stops (if running) and deletes a VM; "removed" is logged first so a copy of the log
// taken before deletion (run --events) ends with it.
void remove_vm(const VmRef& vm, const std::function<void(const fs::path&)>& before_delete = nullptr) {
  VmLiveness l = inspect(vm);
  if (l.state && l.alive) {
    if (Result<ApiClient> client = ApiClient::connect(vm.paths.api_sock)) {
      (void)client->stop(std::chrono::seconds(20));
    }
    for (int i = 0; i < 100 && runtime::process_alive(l.state->pid); ++i) {
      if (i == 50) ::kill(static_cast<pid_t>(l.state->pid), SIGKILL);  // QEMU dies with it
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  {
    runtime::AuditLog log;
    if (log.open(vm.paths.events, vm.id)) log.lifecycle("removed", nullptr, runtime::unix_millis());
  }
  if (before_delete) before_delete(vm.paths.events);
  std::error_code ec;
  fs::remove_all(vm.paths.dir, ec);
  if (ec) throw CommandError("can't remove " + vm.paths.dir.string() + ": " + ec.message());
}

// ---- exec -------------------------------------------------------------------------------

// Puts the local terminal in raw mode for a TTY session; restores it on destruction.
class RawTerminal {
 public:
  explicit RawTerminal(bool enable) {
    if (!enable || !isatty(0) || tcgetattr(0, &saved_) != 0) return;
    termios raw = saved_;
    cfmakeraw(&raw);
    if (tcsetattr(0, TCSANOW, &raw) == 0) active_ = true;
  }
  ~RawTerminal() {
    if (active_) tcsetattr(0, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

std::optional<std::pair<std::uint16_t, std::uint16_t>> terminal_size() {
  winsize ws{};
  for (int fd : {1, 0, 2}) {
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) return std::make_pair(ws.ws_row, ws.ws_col);
  }
  return std::nullopt;
}

struct ExecFlags {
  bool interactive = false;
  bool tty = false;
  std::vector<std::string> env;
  std::string workdir;
  std::string user;
  bool privileged = false;
  std::string timeout;
  std::vector<std::string> command;
};

struct ExecCapture {
  bool capture = false;  // --json: collect instead of streaming
  std::string out, err;
};

int run_exec(ApiClient& client, runtime::ExecRequest request, ExecCapture& capture) {
  if (request.argv.empty()) throw CommandError("no command given (put it after --)");
  if (request.tty) {
    if (auto size = terminal_size()) std::tie(request.rows, request.cols) = *size;
  }
  runtime::ExecIo io;
  io.stdin_fd = 0;
  if (capture.capture) {
    io.on_stdout = [&](std::string_view d) { capture.out.append(d); };
    io.on_stderr = [&](std::string_view d) { capture.err.append(d); };
  } else {
    io.on_stdout = [](std::string_view d) { write_all(1, d); };
    io.on_stderr = [](std::string_view d) { write_all(2, d); };
  }
  if (request.tty) io.window_size = terminal_size;
  runtime::ExecOutcome outcome;
  {
    RawTerminal raw(request.tty && request.forward_stdin);
    Result<runtime::ExecOutcome> result = client.exec(request, io);
    if (!result) throw CommandError(result.error());
    outcome = *result;
  }
  if (!outcome.error_code.empty()) {
    std::cerr << "airlock: " << request.argv.front() << ": " << outcome.error_message << "\n";
  } else if (outcome.timed_out) {
    std::cerr << "airlock: the command timed out and was killed\n";
  } else if (!outcome.signal_name.empty() && !request.tty) {
    std::cerr << "airlock: the command was killed by " << outcome.signal_name << "\n";
  }
  return runtime::exit_code_for(outcome);
}

runtime::ExecRequest exec_request(const ExecFlags& f, const std::map<std::string, std::string>& base_env,
                                  std::uint64_t default_timeout_ms) {
  runtime::ExecRequest r;
  r.argv = f.command;
  r.env = base_env;
  for (const auto& e : f.env) {
    auto [k, v] = policy::parse_env_flag(e);
    r.env[k] = v;
  }
  r.cwd = f.workdir;
  r.user = f.user;
  r.tty = f.tty;
  r.forward_stdin = f.interactive;
  r.privileged = f.privileged;
  r.timeout_ms = default_timeout_ms;
  if (!f.timeout.empty()) r.timeout_ms = std::uint64_t{policy::parse_timeout_seconds(f.timeout)} * 1000;
  return r;
}

// ---- commands ---------------------------------------------------------------------------

// run --events: the VM's audit events, written as they happen. The target is created
// (truncated) before the VM exists, so a bad path fails the run before it starts
// anything, and closed again: the supervisor, forked meanwhile, must not hold it open.
// start() reopens it and puts a follower on its own API connection and thread, streaming
// events from the first; finish() ends the follow (the supervisor ends it by itself when
// the VM stops) and adds what the log holds past the last event streamed: "removed",
// which the CLI writes itself, or the rest after --keep. Without a follower, finish()
// writes the whole log.
class LiveEvents {
 public:
  explicit LiveEvents(std::string target) : target_(std::move(target)) {
    if (target_ == "-") {
      fd_ = STDERR_FILENO;
      return;
    }
    const int fd = ::open(target_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw CommandError("can't open " + target_ + ": " + std::strerror(errno));
    ::close(fd);
  }

  void start(const fs::path& api_sock) {
    if (fd_ < 0) {
      fd_ = ::open(target_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd_ < 0) {  // the VM runs by now: say so, and let the run go on without events
        std::cerr << "airlock: can't open " << target_ << ": " << std::strerror(errno) << "\n";
        return;
      }
      own_fd_ = true;
    }
    Result<ApiClient> client = ApiClient::connect(api_sock);
    if (!client) {
      debug("events are written at the end: " + client.error());
      return;
    }
    client_ = std::make_unique<ApiClient>(std::move(*client));
    follower_ = std::thread([this] {
      Result<bool> done = client_->events(0, true, [this](const nlohmann::ordered_json& e) {
        write_line(e.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
        auto seq = e.find("seq");
        if (seq != e.end() && seq->is_number_unsigned()) last_seq_ = seq->get<std::uint64_t>();
        return true;
      });
      if (!done) debug("event stream: " + done.error());
    });
  }
  ~LiveEvents() {
    stop_follower();
    if (own_fd_ && fd_ >= 0) ::close(fd_);
  }
  LiveEvents(const LiveEvents&) = delete;
  LiveEvents& operator=(const LiveEvents&) = delete;

  void finish(const fs::path& log) {
    stop_follower();
    std::ifstream in(log, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      auto event = nlohmann::json::parse(line, nullptr, false);
      if (event.is_discarded() || !event.is_object()) continue;
      auto seq = event.find("seq");
      if (seq != event.end() && seq->is_number_unsigned() && seq->get<std::uint64_t>() > last_seq_)
        write_line(line);
    }
  }

 private:
  void stop_follower() {
    if (!follower_.joinable()) return;
    client_->shutdown();  // events already received stay readable; the log covers the rest
    follower_.join();
  }
  // One write per event, so lines on a shared stderr stay whole.
  void write_line(std::string line) {
    if (fd_ < 0) return;
    line += '\n';
    std::size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

  std::string target_;
  int fd_ = -1;
  bool own_fd_ = false;
  std::unique_ptr<ApiClient> client_;
  std::thread follower_;
  std::uint64_t last_seq_ = 0;  // the follower's, read after the join
};

struct RunArgs {
  PolicyFlags policy;
  ExecFlags exec;
  bool keep = false;
  bool json = false;
  std::string events;
  std::string image;
  bool no_network = false;
};

int cmd_run(RunArgs& a) {
  policy::Policy p = build_policy(a.policy);
  if (!a.image.empty()) p.image = a.image;
  if (a.exec.command.empty()) throw CommandError("no command given: airlock run [flags] -- CMD...");
  runtime::ExecRequest request =
      exec_request(a.exec, p.env, std::uint64_t{p.resources.timeout_seconds} * 1000);
  std::unique_ptr<LiveEvents> live;
  if (!a.events.empty()) live = std::make_unique<LiveEvents>(a.events);
  const runtime::LaunchResult vm = create_vm(p, !a.no_network);
  const VmRef ref{vm.id, runtime::vm_paths(runtime::airlock_home(), vm.id)};
  if (live) live->start(ref.paths.api_sock);
  ExecCapture capture;
  capture.capture = a.json;
  int code = kExitRuntime;
  std::string failure;
  const auto started = std::chrono::steady_clock::now();
  try {
    ApiClient client = connect_running(ref);
    code = run_exec(client, request, capture);
  } catch (const CommandError& e) {
    failure = e.what();
  }
  const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started).count();
  auto copy_events = [&](const fs::path& log) {
    if (live) live->finish(log);
  };
  if (a.keep) {
    copy_events(ref.paths.events);
    std::cerr << "airlock: kept VM " << vm.id << "\n";
  } else {
    remove_vm(ref, copy_events);
  }
  if (!failure.empty()) throw CommandError(failure);
  if (a.json) {
    nlohmann::json out = {{"vm_id", vm.id}, {"exit_code", code}, {"boot_ms", vm.boot_ms},
                          {"duration_ms", duration}};
    out["stdout"] = capture.out;
    out["stderr"] = capture.err;
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  return code;
}

struct CreateArgs {
  PolicyFlags policy;
  std::string image;
  bool no_network = false;
};

int cmd_create(CreateArgs& a) {
  policy::Policy p = build_policy(a.policy);
  if (!a.image.empty()) p.image = a.image;
  std::cout << create_vm(p, !a.no_network).id << "\n";
  return 0;
}

struct ExecArgs {
  std::string id;
  ExecFlags exec;
};

int cmd_exec(ExecArgs& a) {
  const VmRef vm = find_vm(runtime::airlock_home(), a.id);
  runtime::ExecRequest request = exec_request(a.exec, {}, 0);
  ApiClient client = connect_running(vm);
  ExecCapture capture;
  return run_exec(client, request, capture);
}

struct CpArgs {
  std::string src, dst;
};

int cmd_cp(CpArgs& a) {
  Result<runtime::CopyEndpoint> src = runtime::parse_copy_endpoint(a.src);
  if (!src) throw CommandError(src.error());
  Result<runtime::CopyEndpoint> dst = runtime::parse_copy_endpoint(a.dst);
  if (!dst) throw CommandError(dst.error());
  if (src->vm.has_value() == dst->vm.has_value()) {
    throw CommandError("cp copies between the host and a VM: one side must be ID:/path");
  }
  const fs::path home = runtime::airlock_home();
  if (dst->vm) {
    const VmRef vm = find_vm(home, *dst->vm);
    const int fd = ::open(src->path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw CommandError(src->path + ": " + std::strerror(errno));
    struct stat st {};
    fstat(fd, &st);
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw CommandError(src->path + ": only regular files can be copied");
    }
    std::string target = dst->path;
    if (target.back() == '/') target += fs::path(src->path).filename().string();
    ApiClient client = connect_running(vm);
    Result<std::uint64_t> sent = client.put_file(target, fd, static_cast<std::uint64_t>(st.st_size),
                                                 st.st_mode & 07777);
    ::close(fd);
    if (!sent) throw CommandError(dst->path + ": " + sent.error());
    return 0;
  }
  const VmRef vm = find_vm(home, *src->vm);
  fs::path target = dst->path;
  if (fs::is_directory(target)) target /= fs::path(src->path).filename();
  const fs::path tmp = target.string() + ".airlock-part";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw CommandError(tmp.string() + ": " + std::strerror(errno));
  ApiClient client = connect_running(vm);
  auto got = client.get_file(src->path, [fd](std::string_view chunk) {
    write_all(fd, chunk);
    return true;
  });
  if (!got) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw CommandError(a.src + ": " + got.error());
  }
  fchmod(fd, got->second & 0777);
  ::close(fd);
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    throw CommandError(target.string() + ": " + std::strerror(errno));
  }
  return 0;
}

std::string format_time(std::int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

int cmd_ls(bool json) {
  const fs::path home = runtime::airlock_home();
  nlohmann::json rows = nlohmann::json::array();
  std::ostringstream table;
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %-9s %-10s %-5s %-7s %-20s %s\n", "ID", "STATUS", "IMAGE",
                "CPUS", "MEMORY", "CREATED", "BOOT");
  table << line;
  for (const auto& id : runtime::list_vm_ids(home)) {
    const VmRef vm{id, runtime::vm_paths(home, id)};
    VmLiveness l = inspect(vm);
    if (!l.state) {
      rows.push_back({{"id", id}, {"status", "unknown"}, {"error", l.state_error}});
      std::snprintf(line, sizeof line, "%-12s %-9s (%s)\n", id.c_str(), "unknown", l.state_error.c_str());
      table << line;
      continue;
    }
    const runtime::VmState& s = *l.state;
    const std::string status = runtime::effective_status(s, l.alive);
    const auto& res = s.config.value("resources", nlohmann::json::object());
    const double cpus = res.value("cpus", 1.0);
    const unsigned mem = res.value("memory_mb", 0u);
    nlohmann::json row = {{"id", id}, {"status", status}, {"image", s.image}, {"created", s.created},
                          {"pid", s.pid}, {"accel", s.accel}, {"config", s.config}};
    if (s.boot_ms) row["boot_ms"] = *s.boot_ms;
    if (!s.error.empty()) row["error"] = s.error;
    rows.push_back(row);
    std::ostringstream c;
    c << cpus;
    std::snprintf(line, sizeof line, "%-12s %-9s %-10s %-5s %-7s %-20s %s\n", id.c_str(),
                  status.c_str(), s.image.c_str(), c.str().c_str(),
                  (std::to_string(mem) + "M").c_str(), format_time(s.created).c_str(),
                  s.boot_ms ? (std::to_string(*s.boot_ms) + "ms").c_str() : "-");
    table << line;
  }
  if (json) {
    std::cout << rows.dump(2) << "\n";
  } else {
    std::cout << table.str();
  }
  return 0;
}

int cmd_stop(const std::string& wanted) {
  const VmRef vm = find_vm(runtime::airlock_home(), wanted);
  VmLiveness l = inspect(vm);
  if (!l.state) throw CommandError(l.state_error);
  if (!l.alive) return 0;  // already stopped
  ApiClient client = connect_running(vm);
  Result<bool> stopped = client.stop(std::chrono::seconds(20));
  if (!stopped) throw CommandError("stopping " + vm.id + ": " + stopped.error());
  for (int i = 0; i < 100 && runtime::process_alive(l.state->pid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

int cmd_rm(const std::vector<std::string>& ids, bool all) {
  const fs::path home = runtime::airlock_home();
  std::vector<std::string> targets = all ? runtime::list_vm_ids(home) : ids;
  if (targets.empty() && !all) throw CommandError("rm needs a VM id or --all");
  int code = 0;
  for (const auto& wanted : targets) {
    try {
      remove_vm(find_vm(home, wanted));
    } catch (const CommandError& e) {
      std::cerr << "airlock: " << e.what() << "\n";
      code = kExitRuntime;
    }
  }
  return code;
}

int cmd_logs(const std::string& wanted) {
  const VmRef vm = find_vm(runtime::airlock_home(), wanted);
  std::ifstream in(vm.paths.console_log, std::ios::binary);
  if (!in) throw CommandError("VM " + vm.id + " has no console log yet");
  std::cout << in.rdbuf();
  return 0;
}

int cmd_events(const std::string& wanted, bool follow) {
  const VmRef vm = find_vm(runtime::airlock_home(), wanted);
  VmLiveness l = inspect(vm);
  if (l.alive) {
    if (Result<ApiClient> client = ApiClient::connect(vm.paths.api_sock)) {
      Result<bool> done = client->events(0, follow, [](const nlohmann::ordered_json& e) {
        std::cout << e.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
                  << std::endl;
        return static_cast<bool>(std::cout);
      });
      if (!done) throw CommandError(done.error());
      return 0;
    }
  }
  std::ifstream in(vm.paths.events, std::ios::binary);
  std::cout << in.rdbuf();
  return 0;
}

// ---- images -------------------------------------------------------------------------------

#ifdef AIRLOCK_HAVE_IMAGES
int cmd_image_build(const std::string& name, bool force) {
  images::ImageStore store(runtime::airlock_home());
  images::BuildOptions options;
  options.force = force;
  Result<images::ImageInfo> info = store.ensure(name, options);
  if (!info) throw CommandError("image '" + name + "': " + info.error());
  std::cout << info->name << " " << info->kernel_version << " " << info->dir.string() << "\n";
  return 0;
}

int cmd_image_ls(bool json) {
  images::ImageStore store(runtime::airlock_home());
  nlohmann::json rows = nlohmann::json::array();
  char line[256];
  std::snprintf(line, sizeof line, "%-16s %-24s %-10s %s\n", "NAME", "KERNEL", "SIZE", "CREATED");
  std::string table = line;
  for (const auto& i : store.list()) {
    rows.push_back({{"name", i.name}, {"kernel_version", i.kernel_version},
                    {"size_bytes", i.size_bytes}, {"created", i.created},
                    {"recipe_hash", i.recipe_hash}});
    std::snprintf(line, sizeof line, "%-16s %-24s %-10s %s\n", i.name.c_str(),
                  i.kernel_version.c_str(), (std::to_string(i.size_bytes >> 20) + "M").c_str(),
                  format_time(i.created * 1000).c_str());
    table += line;
  }
  std::cout << (json ? rows.dump(2) + "\n" : table);
  return 0;
}

int cmd_image_rm(const std::string& name) {
  images::ImageStore store(runtime::airlock_home());
  Result<bool> removed = store.remove(name);
  if (!removed) throw CommandError("image '" + name + "': " + removed.error());
  if (!*removed) throw CommandError("no image '" + name + "'");
  return 0;
}
#else
int images_unavailable() { throw CommandError("this build has no image store"); }
#endif

void add_exec_flags(CLI::App& cmd, ExecFlags& f, bool with_env_and_timeout) {
  cmd.add_flag("-i,--interactive", f.interactive, "Forward stdin to the command");
  cmd.add_flag("-t,--tty", f.tty, "Run the command on a terminal");
  cmd.add_option("-w,--workdir", f.workdir, "Working directory in the guest (default: the workspace)");
  if (with_env_and_timeout) {
    cmd.add_option("-e,--env", f.env, "Set K=V for the command, or pass $K through with K")
        ->type_name("K=V")
        ->allow_extra_args(false);
    cmd.add_option("--timeout", f.timeout, "Kill the command after this long: 30, 90s, 5m")
        ->type_name("SECONDS");
  }
}

}  // namespace

void register_vm_commands(CLI::App& app) {
  // run
  auto run = std::make_shared<RunArgs>();
  CLI::App* run_cmd = app.add_subcommand("run", "Create a VM, run a command in it, remove the VM");
  add_policy_flags(*run_cmd, run->policy);
  add_exec_flags(*run_cmd, run->exec, false);
  run_cmd->add_flag("--keep", run->keep, "Keep the VM after the command ends");
  run_cmd->add_flag("--json", run->json, "Print one JSON object with the exit code and output");
  run_cmd->add_option("--events", run->events, "Write the audit events to FILE (- = stderr) as they happen")
      ->type_name("FILE|-");
  run_cmd->add_option("--image", run->image, "Image name (default: the policy's, else default)");
  run_cmd->add_flag("--no-network", run->no_network, "Give the VM no network interface at all");
  run_cmd->add_option("command", run->exec.command, "Command and arguments (after --)");
  run_cmd->callback([run] { guarded([&] { return cmd_run(*run); }); });

  // create
  auto create = std::make_shared<CreateArgs>();
  CLI::App* create_cmd = app.add_subcommand("create", "Create and boot a VM; prints its id");
  add_policy_flags(*create_cmd, create->policy);
  create_cmd->add_option("--image", create->image, "Image name (default: the policy's, else default)");
  create_cmd->add_flag("--no-network", create->no_network, "Give the VM no network interface at all");
  create_cmd->callback([create] { guarded([&] { return cmd_create(*create); }); });

  // exec
  auto exec = std::make_shared<ExecArgs>();
  CLI::App* exec_cmd = app.add_subcommand("exec", "Run a command in a running VM");
  exec_cmd->add_option("id", exec->id, "VM id (or a unique prefix)")->required();
  add_exec_flags(*exec_cmd, exec->exec, true);
  exec_cmd->add_option("-u,--user", exec->exec.user, "User in the guest: airlock (default), root, or a uid");
  exec_cmd->add_flag("--privileged", exec->exec.privileged, "Skip the in-guest sandbox (seccomp, capabilities)");
  exec_cmd->add_option("command", exec->exec.command, "Command and arguments (after --)")->required();
  exec_cmd->callback([exec] { guarded([&] { return cmd_exec(*exec); }); });

  // cp
  auto cp = std::make_shared<CpArgs>();
  CLI::App* cp_cmd = app.add_subcommand("cp", "Copy a file between the host and a VM (ID:/path)");
  cp_cmd->add_option("src", cp->src, "Source: host path or ID:/guest/path")->required();
  cp_cmd->add_option("dst", cp->dst, "Destination: host path or ID:/guest/path")->required();
  cp_cmd->callback([cp] { guarded([&] { return cmd_cp(*cp); }); });

  // ls
  auto ls_json = std::make_shared<bool>(false);
  CLI::App* ls_cmd = app.add_subcommand("ls", "List VMs");
  ls_cmd->add_flag("--json", *ls_json, "Print JSON");
  ls_cmd->callback([ls_json] { guarded([&] { return cmd_ls(*ls_json); }); });

  // stop
  auto stop_id = std::make_shared<std::string>();
  CLI::App* stop_cmd = app.add_subcommand("stop", "Stop a VM (keeps its files)");
  stop_cmd->add_option("id", *stop_id, "VM id")->required();
  stop_cmd->callback([stop_id] { guarded([&] { return cmd_stop(*stop_id); }); });

  // rm
  auto rm_ids = std::make_shared<std::vector<std::string>>();
  auto rm_all = std::make_shared<bool>(false);
  CLI::App* rm_cmd = app.add_subcommand("rm", "Stop and delete VMs");
  rm_cmd->add_option("ids", *rm_ids, "VM ids");
  rm_cmd->add_flag("--all", *rm_all, "Remove every VM");
  rm_cmd->callback([rm_ids, rm_all] { guarded([&] { return cmd_rm(*rm_ids, *rm_all); }); });

  // logs
  auto logs_id = std::make_shared<std::string>();
  CLI::App* logs_cmd = app.add_subcommand("logs", "Print a VM's console log");
  logs_cmd->add_option("id", *logs_id, "VM id")->required();
  logs_cmd->callback([logs_id] { guarded([&] { return cmd_logs(*logs_id); }); });

  // events
  auto events_id = std::make_shared<std::string>();
  auto events_follow = std::make_shared<bool>(false);
  CLI::App* events_cmd = app.add_subcommand("events", "Print a VM's audit events (JSON Lines)");
  events_cmd->add_option("id", *events_id, "VM id")->required();
  events_cmd->add_flag("-f,--follow", *events_follow, "Keep printing new events until the VM stops");
  events_cmd->callback([events_id, events_follow] {
    guarded([&] { return cmd_events(*events_id, *events_follow); });
  });

  // image
  CLI::App* image = app.add_subcommand("image", "Build, list and remove guest images");
  image->require_subcommand(1);
  auto image_name = std::make_shared<std::string>("default");
  auto image_force = std::make_shared<bool>(false);
  CLI::App* build = image->add_subcommand("build", "Build an image (default: default)");
  build->add_option("name", *image_name, "Image name");
  build->add_flag("--force", *image_force, "Rebuild even if up to date");
  auto image_json = std::make_shared<bool>(false);
  CLI::App* image_ls = image->add_subcommand("ls", "List images");
  image_ls->add_flag("--json", *image_json, "Print JSON");
  auto rm_name = std::make_shared<std::string>();
  CLI::App* image_rm = image->add_subcommand("rm", "Remove an image");
  image_rm->add_option("name", *rm_name, "Image name")->required();
#ifdef AIRLOCK_HAVE_IMAGES
  build->callback([image_name, image_force] {
    guarded([&] { return cmd_image_build(*image_name, *image_force); });
  });
  image_ls->callback([image_json] { guarded([&] { return cmd_image_ls(*image_json); }); });
  image_rm->callback([rm_name] { guarded([&] { return cmd_image_rm(*rm_name); }); });
#else
  for (CLI::App* c : {build, image_ls, image_rm}) {
    c->callback([] { guarded([] { return images_unavailable(); }); });
  }
#endif
}

}  // namespace airlock::cli
