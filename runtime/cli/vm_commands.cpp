// The VM commands: run, create, start, exec, ls, stop, rm, logs, events, image (cp is in
// cp_command.cpp).
//
// Every command resolves the airlock home, finds its VM by id (or unique prefix) and talks
// to that VM's supervisor over api.sock (runtime/vm/client.hpp); create, run and start go
// through runtime/vm/sandboxes.hpp, shared with the JSON-RPC server. Exit codes: the
// command's own for run/exec, 125 for airlock's failures (unknown VM, missing image, VM
// that won't boot), 2 for policy and flag errors. The VM's NIC and its policed network
// come from the supervisor; --no-network leaves the NIC out.
#include "runtime/cli/vm_commands.hpp"
#include "runtime/cli/guarded.hpp"

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
#include "runtime/vm/sandboxes.hpp"
#include "runtime/vm/supervisor.hpp"
#include "runtime/vm/vm_store.hpp"
#ifdef AIRLOCK_HAVE_IMAGES
#include "images/image_store.hpp"
#endif

namespace airlock::cli {

namespace fs = std::filesystem;
using runtime::ApiClient;

namespace {

bool debug_enabled() {
  const char* d = std::getenv("AIRLOCK_DEBUG");
  return d != nullptr && *d != '\0' && std::string(d) != "0";
}

void debug(const std::string& line) {
  if (debug_enabled()) std::cerr << "airlock: debug: " << line << "\n";
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;  // a closed pipe downstream: drop the rest, as cat would
    data.remove_prefix(static_cast<std::size_t>(w));
  }
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

// --hostname and --add-host: the machine options of create and run.
struct MachineFlags {
  std::string hostname;
  std::vector<std::string> add_hosts;
  bool no_network = false;
};

void add_machine_flags(CLI::App& cmd, MachineFlags& f) {
  cmd.add_flag("--no-network", f.no_network, "Give the VM no network interface at all");
  cmd.add_option("--hostname", f.hostname, "The guest's host name (default: the VM id)");
  cmd.add_option("--add-host", f.add_hosts, "Add NAME:IP to the guest's /etc/hosts (repeatable)")
      ->type_name("NAME:IP")
      ->allow_extra_args(false);
}

// Bad machine flags are usage errors (exit 2), like bad policy flags.
runtime::CreateOptions create_options(const MachineFlags& f) {
  runtime::CreateOptions o;
  o.network = !f.no_network;
  try {
    if (!f.hostname.empty()) o.hostname = runtime::check_hostname(f.hostname);
    for (const auto& h : f.add_hosts) o.add_hosts.push_back(runtime::parse_add_host(h));
  } catch (const runtime::SandboxError& e) {
    throw policy::PolicyError(std::string("--hostname/--add-host: ") + e.what());
  }
  return o;
}

runtime::LaunchResult create_vm(const policy::Policy& p, const runtime::CreateOptions& options) {
  runtime::LaunchResult launched = runtime::create_sandbox(runtime::airlock_home(), p, options);
  debug("VM " + launched.id + " booted in " + std::to_string(launched.boot_ms) + " ms");
  return launched;
}

void remove_vm(const VmRef& vm, const std::function<void(const fs::path&)>& before_delete = nullptr) {
  runtime::remove_sandbox(runtime::airlock_home(), vm.id, before_delete);
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
  MachineFlags machine;
  ExecFlags exec;
  bool keep = false;
  bool json = false;
  std::string events;
  std::string image;
};

int cmd_run(RunArgs& a) {
  policy::Policy p = build_policy(a.policy);
  if (!a.image.empty()) p.image = a.image;
  if (a.exec.command.empty()) throw CommandError("no command given: airlock run [flags] -- CMD...");
  runtime::ExecRequest request =
      exec_request(a.exec, p.env, std::uint64_t{p.resources.timeout_seconds} * 1000);
  const runtime::CreateOptions options = create_options(a.machine);
  std::unique_ptr<LiveEvents> live;
  if (!a.events.empty()) live = std::make_unique<LiveEvents>(a.events);
  const runtime::LaunchResult vm = create_vm(p, options);
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
  MachineFlags machine;
  std::string image;
};

int cmd_create(CreateArgs& a) {
  policy::Policy p = build_policy(a.policy);
  if (!a.image.empty()) p.image = a.image;
  std::cout << create_vm(p, create_options(a.machine)).id << "\n";
  return 0;
}

struct StartArgs {
  std::string id;
  std::vector<std::string> secrets;  // NAME=VALUE, or NAME for $NAME
};

int cmd_start(StartArgs& a) {
  const fs::path home = runtime::airlock_home();
  const VmRef vm = find_vm(home, a.id);
  std::map<std::string, std::string> given;
  for (const auto& s : a.secrets) {
    const auto eq = s.find('=');
    const std::string name = s.substr(0, eq);
    if (eq != std::string::npos) {
      given[name] = s.substr(eq + 1);
    } else if (const char* v = std::getenv(name.c_str())) {
      given[name] = v;
    } else {
      throw policy::PolicyError("--secret " + name + ": $" + name + " is not set");
    }
  }
  const runtime::LaunchResult started = runtime::start_sandbox(home, vm.id, given, policy::process_env());
  debug("VM " + started.id + " booted in " + std::to_string(started.boot_ms) + " ms");
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
  const fs::path home = runtime::airlock_home();
  const VmRef vm = find_vm(home, wanted);
  runtime::stop_sandbox(home, vm.id);
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
  options.repair = true;
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
  add_machine_flags(*run_cmd, run->machine);
  run_cmd->add_option("command", run->exec.command, "Command and arguments (after --)");
  run_cmd->callback([run] { guarded([&] { return cmd_run(*run); }); });

  // create
  auto create = std::make_shared<CreateArgs>();
  CLI::App* create_cmd = app.add_subcommand("create", "Create and boot a VM; prints its id");
  add_policy_flags(*create_cmd, create->policy);
  create_cmd->add_option("--image", create->image, "Image name (default: the policy's, else default)");
  add_machine_flags(*create_cmd, create->machine);
  create_cmd->callback([create] { guarded([&] { return cmd_create(*create); }); });

  // start
  auto start = std::make_shared<StartArgs>();
  CLI::App* start_cmd = app.add_subcommand("start", "Boot a stopped VM again, with its disk and config");
  start_cmd->add_option("id", start->id, "VM id (or a unique prefix)")->required();
  start_cmd->add_option("--secret", start->secrets,
                        "A secret given as a value at create, again: NAME=VALUE, or NAME to take $NAME "
                        "(values are never stored; secrets from the environment are read again)")
      ->type_name("NAME[=VALUE]")
      ->allow_extra_args(false);
  start_cmd->callback([start] { guarded([&] { return cmd_start(*start); }); });

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
  register_cp_command(app);

  // ls
  auto ls_json = std::make_shared<bool>(false);
  CLI::App* ls_cmd = app.add_subcommand("ls", "List VMs");
  ls_cmd->add_flag("--json", *ls_json, "Print JSON");
  ls_cmd->callback([ls_json] { guarded([&] { return cmd_ls(*ls_json); }); });

  // stop
  auto stop_id = std::make_shared<std::string>();
  CLI::App* stop_cmd = app.add_subcommand("stop", "Stop a VM (keeps its disk: airlock start boots it again)");
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

  // supervise: the VM supervisor process itself, started by launch_vm (never by hand).
  CLI::App* supervise = app.add_subcommand("supervise", "Run a VM's supervisor (internal)");
  supervise->group("");  // hidden from --help
  supervise->callback([] { set_exit_code(runtime::supervisor_main(4, 3)); });

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
