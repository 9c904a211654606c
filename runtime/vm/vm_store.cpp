// VM directories, ids and state.json; see vm_store.hpp.
#include "runtime/vm/vm_store.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace airlock::runtime {

namespace fs = std::filesystem;

fs::path airlock_home() {
  if (const char* h = std::getenv("AIRLOCK_HOME"); h != nullptr && *h != '\0') return h;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x != nullptr && *x != '\0') {
    return fs::path(x) / "airlock";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr && *home != '\0' ? home : "/tmp") / ".local/share/airlock";
}

VmPaths vm_paths(const fs::path& home, const std::string& id) {
  VmPaths p;
  p.dir = home / "vms" / id;
  p.state = p.dir / "state.json";
  p.api_sock = p.dir / "api.sock";
  p.ctl_sock = p.dir / "ctl.sock";
  p.qmp_sock = p.dir / "qmp.sock";
  p.console_log = p.dir / "console.log";
  p.disk = p.dir / "disk.qcow2";
  p.events = p.dir / "events.jsonl";
  p.supervisor_log = p.dir / "supervisor.log";
  return p;
}

std::string generate_vm_id() {
  unsigned char bytes[4] = {};
  std::size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  static const char hex[] = "0123456789abcdef";
  std::string id = "vm-";
  for (unsigned char b : bytes) {
    id += hex[b >> 4];
    id += hex[b & 0xf];
  }
  return id;
}

bool is_valid_vm_id(std::string_view id) {
  if (id.size() != 11 || id.substr(0, 3) != "vm-") return false;
  return std::all_of(id.begin() + 3, id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

namespace {

template <typename T>
Result<T> field(const nlohmann::json& j, const char* name, bool required, T fallback) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    if (required) return Error{std::string("missing field \"") + name + "\""};
    return fallback;
  }
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) return Error{std::string("field \"") + name + "\" must be a string"};
    return it->template get<std::string>();
  } else {
    if (!it->is_number_integer()) {
      return Error{std::string("field \"") + name + "\" must be an integer"};
    }
    return it->template get<T>();
  }
}

}  // namespace

Result<VmState> parse_vm_state(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{"not valid JSON"};
  if (!j.is_object()) return Error{"not a JSON object"};
  VmState s;
  auto id = field<std::string>(j, "id", true, "");
  if (!id) return Error{id.error()};
  if (!is_valid_vm_id(*id)) return Error{"field \"id\" is not a VM id: '" + *id + "'"};
  s.id = *id;
  auto pid = field<std::int64_t>(j, "pid", true, 0);
  if (!pid) return Error{pid.error()};
  if (*pid <= 0) return Error{"field \"pid\" must be positive"};
  s.pid = *pid;
  auto status = field<std::string>(j, "status", true, "");
  if (!status) return Error{status.error()};
  s.status = *status;
  auto created = field<std::int64_t>(j, "created", false, 0);
  if (!created) return Error{created.error()};
  s.created = *created;
  auto image = field<std::string>(j, "image", false, "");
  if (!image) return Error{image.error()};
  s.image = *image;
  auto accel = field<std::string>(j, "accel", false, "");
  if (!accel) return Error{accel.error()};
  s.accel = *accel;
  auto error = field<std::string>(j, "error", false, "");
  if (!error) return Error{error.error()};
  s.error = *error;
  if (auto it = j.find("boot_ms"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) return Error{"field \"boot_ms\" must be an integer"};
    s.boot_ms = it->get<std::int64_t>();
  }
  if (auto it = j.find("config"); it != j.end()) {
    if (!it->is_object()) return Error{"field \"config\" must be an object"};
    s.config = *it;
  }
  return s;
}

std::string serialize_vm_state(const VmState& s) {
  nlohmann::json j = {{"id", s.id},         {"pid", s.pid},     {"status", s.status},
                      {"created", s.created}, {"image", s.image}, {"config", s.config}};
  if (s.boot_ms) j["boot_ms"] = *s.boot_ms;
  if (!s.accel.empty()) j["accel"] = s.accel;
  if (!s.error.empty()) j["error"] = s.error;
  return j.dump(2) + "\n";
}

Result<VmState> read_vm_state(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error{file.string() + ": can't read"};
  std::ostringstream text;
  text << in.rdbuf();
  Result<VmState> s = parse_vm_state(text.str());
  if (!s) return Error{file.string() + ": " + s.error()};
  return s;
}

bool write_vm_state(const fs::path& file, const VmState& state) {
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << serialize_vm_state(state);
    out.flush();
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), file.c_str()) == 0;
}

bool process_alive(std::int64_t pid) {
  if (pid <= 0) return false;
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  // A zombie still answers kill(0); its /proc stat says 'Z'.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return true;
  const char state = line[close + 2];
  return state != 'Z' && state != 'X';
}

std::string effective_status(const VmState& state, bool supervisor_alive) {
  if (supervisor_alive) return state.status;
  return state.status == "failed" ? "failed" : "stopped";
}

std::vector<std::string> list_vm_ids(const fs::path& home) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(home / "vms", ec)) {
    const std::string name = entry.path().filename().string();
    if (is_valid_vm_id(name) && entry.is_directory(ec)) ids.push_back(name);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::int64_t unix_millis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace airlock::runtime
