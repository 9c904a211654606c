// The router's exec and file rules, on their own.
#include <doctest/doctest.h>

#include "runtime/vm/exec_service.hpp"
#include "runtime/vm/file_service.hpp"

using namespace airlock::runtime;
using airlock::protocol::Frame;
using airlock::protocol::FrameType;

TEST_CASE("exec service: base env under the request's own, malformed env untouched") {
  ExecService exec;
  exec.set_base_env({{"A", "base"}, {"B", "base"}});
  nlohmann::json request = {{"op", "exec"}, {"argv", {"true"}}, {"env", {{"B", "mine"}}}};
  auto merged = nlohmann::json::parse(exec.guest_payload(request, request.dump()));
  CHECK(merged["env"]["A"] == "base");
  CHECK(merged["env"]["B"] == "mine");
  nlohmann::json bad = {{"op", "exec"}, {"argv", {"true"}}, {"env", "A=1"}};
  CHECK(exec.guest_payload(bad, bad.dump()) == bad.dump());
}

TEST_CASE("exec service: an exit or a start error ends the exec with one audit event") {
  auto running = ExecService::begin({{"op", "exec"}, {"argv", {"sh", "-c", "echo 'hi'"}}}, 1000);
  CHECK(running.command == "sh -c 'echo '\\''hi'\\'''");
  CHECK_FALSE(ExecService::on_reply(running, "started", {{"op", "started"}}, 1001));
  auto exit = ExecService::on_reply(running, "exit", {{"op", "exit"}, {"exit_code", 3}, {"duration_ms", 7}}, 2000);
  REQUIRE(exit);
  CHECK((*exit)["exec"]["exit_code"] == 3);
  CHECK((*exit)["exec"]["duration_ms"] == 7);
  auto error = ExecService::on_reply(running, "error", {{"op", "error"}, {"code", 42}}, 1500);
  REQUIRE(error);
  CHECK((*error)["exec"]["error"] == "io");  // a non-string code from the guest: a fixed one
  CHECK((*error)["exec"]["duration_ms"] == 500);
  CHECK(ExecService::is_in_flight_op("signal"));
  CHECK_FALSE(ExecService::is_in_flight_op("exec"));
}

TEST_CASE("file service: which frames each file request may carry, and its end") {
  CHECK(FileService::route_for("file.upload") == FileRoute::upload);
  CHECK(FileService::route_for("file.download") == FileRoute::download);
  CHECK_FALSE(FileService::route_for("file.chmod"));
  const Frame data{FrameType::file_data, 1, "x"};
  const Frame control{FrameType::control, 1, "{}"};
  CHECK(FileService::client_may_send(FileRoute::write, data, ""));
  CHECK(FileService::client_may_send(FileRoute::upload, control, "entry"));
  CHECK(FileService::client_may_send(FileRoute::upload, control, "end"));
  CHECK_FALSE(FileService::client_may_send(FileRoute::write, control, "entry"));
  CHECK_FALSE(FileService::client_may_send(FileRoute::read, data, ""));

  FileRouteState download{FileRoute::download, false};
  auto v = FileService::on_guest_frame(download, control, "entry");
  CHECK((v.forward && !v.done));
  v = FileService::on_guest_frame(download, Frame{FrameType::file_data, 1, ""}, "");
  CHECK((v.forward && !v.done));  // one file's end, not the transfer's
  v = FileService::on_guest_frame(download, control, "started");
  CHECK_FALSE(v.forward);
  v = FileService::on_guest_frame(download, control, "end");
  CHECK((v.forward && v.done));

  FileRouteState read{FileRoute::read, false};
  CHECK_FALSE(FileService::on_guest_frame(read, data, "").forward);  // data before its ok
  CHECK(FileService::on_guest_frame(read, control, "ok").forward);
  CHECK(FileService::on_guest_frame(read, data, "").forward);
  CHECK(FileService::on_guest_frame(read, Frame{FrameType::file_data, 1, ""}, "").done);
}
