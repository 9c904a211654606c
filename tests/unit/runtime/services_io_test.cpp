// The supervisor's I/O services on a real loop, without a VM: the network service's
// interface, QMP off the loop, the API server surviving a throwing handler, and the
// lifecycle's stop escalation against a stand-in process.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <utility>

#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio.hpp>

#include "protocol/frame.hpp"
#include "runtime/vm/api_server.hpp"
#include "runtime/vm/lifecycle_service.hpp"
#include "runtime/vm/network_service.hpp"
#include "runtime/vm/qmp_worker.hpp"
#include "tests/support/temp_dir.hpp"

using namespace airlock;
using namespace airlock::runtime;
using namespace std::chrono_literals;

namespace {

// Runs the test body from inside dir (the services use relative socket and file names).
struct InDir {
  explicit InDir(const std::filesystem::path& dir) : old(std::filesystem::current_path()) {
    std::filesystem::current_path(dir);
  }
  ~InDir() { std::filesystem::current_path(old); }
  std::filesystem::path old;
};

int connect_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_frame(int fd, std::uint32_t channel, const std::string& payload) {
  const std::string bytes = protocol::encode_frame(protocol::FrameType::control, channel, payload);
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
}

// Runs the loop until done() or the deadline (a failing test ends, it doesn't hang).
template <typename Done>
void run_until(boost::asio::io_context& io, Done done, std::chrono::milliseconds limit = 10s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < until) {
    io.run_for(10ms);
    io.restart();
  }
}

}  // namespace

TEST_CASE("network service: start gives the guest's env, CA and addressing; stop is clean") {
  test::TempDir dir;
  policy::Policy p;
  NetworkServiceConfig config;
  config.socket_path = dir.path() / "net.sock";
  config.vm_id = "vm-00000001";
  NetworkService net(p, config);
  auto started = net.start();
  REQUIRE_MESSAGE(started.ok(), started.error());
  CHECK(std::filesystem::exists(config.socket_path));
  CHECK(net.guest_env().count("SSL_CERT_FILE") == 1);
  CHECK(net.ca_pem().find("BEGIN CERTIFICATE") != std::string::npos);
  CHECK(net.guest_nic().guest_ip.find('/') != std::string::npos);
  CHECK_FALSE(net.guest_nic().gateway_ip.empty());
  net.stop();
  net.stop();  // idempotent
  CHECK(net.take_events().empty());
  const nlohmann::json counters = net.counters_json();
  CHECK(counters.contains("netstack"));
  CHECK(counters["audit_queue"]["events"] == 0);
}

TEST_CASE("qmp worker: a call that can't reach QEMU reports on the loop, without blocking it") {
  test::TempDir dir;
  boost::asio::io_context io;
  QmpWorker qmp(io, (dir.path() / "absent.sock").string());
  std::optional<Result<nlohmann::json>> got;
  bool loop_turned = false;
  qmp.execute("query-status", 300ms, [&](Result<nlohmann::json> r) { got = std::move(r); });
  boost::asio::post(io, [&] { loop_turned = true; });
  run_until(io, [&] { return got.has_value(); });
  CHECK(loop_turned);
  REQUIRE(got.has_value());
  CHECK_FALSE(got->ok());
}

TEST_CASE("api server: a handler that throws costs that client its connection, not the server") {
  test::TempDir dir;
  InDir in(dir.path());
  boost::asio::io_context io;
  std::vector<std::string> seen;
  std::vector<ClientId> closed;
  ApiServer::Handlers h;
  h.on_frame = [&](ClientId, protocol::Frame f) {
    seen.push_back(std::move(f.payload));
    if (seen.back() == "boom") {
      seen.pop_back();
      throw std::runtime_error("handler bug");
    }
  };
  h.on_closed = [&](ClientId id) { closed.push_back(id); };
  ApiServer server(io, h);
  REQUIRE(server.listen("api.sock").ok());
  const int a = connect_unix("api.sock");
  const int b = connect_unix("api.sock");
  REQUIRE(a >= 0);
  REQUIRE(b >= 0);
  send_frame(a, 1, "boom");
  run_until(io, [&] { return !closed.empty(); });
  CHECK(closed.size() == 1);
  send_frame(b, 1, "still here");
  run_until(io, [&] { return !seen.empty(); });
  CHECK(seen == std::vector<std::string>{"still here"});
  // A garbage frame stream closes its client too.
  const char junk[9] = {0, 0, 0, 1, 9, 0, 0, 0, 1};  // length 1: below the header's own 5
  REQUIRE(::write(b, junk, sizeof junk) == static_cast<ssize_t>(sizeof junk));
  run_until(io, [&] { return closed.size() == 2; });
  CHECK(closed.size() == 2);
  ::close(a);
  ::close(b);
}

TEST_CASE("lifecycle: stop escalates to SIGKILL when nothing else works, and the exit is reported") {
  test::TempDir dir;
  InDir in(dir.path());
  boost::asio::io_context io;
  SupervisorConfig config;
  config.id = "vm-00000002";
  config.stop_grace = 100ms;
  std::optional<int> exit_code;
  LifecycleService::Hooks hooks;
  hooks.power_off_guest = [] { return false; };
  hooks.on_exit = [&](int code) { exit_code = code; };
  LifecycleService lifecycle(io, config, hooks);
  // A stand-in QEMU that ignores SIGTERM and has no QMP socket.
  REQUIRE(lifecycle.start({"/bin/sh", "-c", "trap '' TERM; sleep 60"}, std::nullopt).ok());
  CHECK(lifecycle.running());
  std::optional<nlohmann::json> status;
  lifecycle.status([&](nlohmann::json s) { status = std::move(s); });
  run_until(io, [&] { return status.has_value(); });
  REQUIRE(status.has_value());
  CHECK((*status)["id"] == "vm-00000002");
  lifecycle.begin_stop();
  CHECK(lifecycle.state().status == "stopping");
  boost::asio::signal_set children(io, SIGCHLD);
  std::function<void()> wait_child = [&] {
    children.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      lifecycle.on_child_exited();
      if (!exit_code) wait_child();
    });
  };
  wait_child();
  run_until(io, [&] { return exit_code.has_value(); }, 15s);
  REQUIRE(exit_code.has_value());
  CHECK(*exit_code == 128 + SIGKILL);
  CHECK_FALSE(lifecycle.running());
  auto state = read_vm_state("state.json");
  REQUIRE(state.ok());
  CHECK(state->id == "vm-00000002");
}
