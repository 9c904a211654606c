// The sans-IO channel router, driven with frames and checked by its outputs.
#include <doctest/doctest.h>

#include "runtime/vm/router.hpp"

using namespace airlock::runtime;
using airlock::protocol::Frame;
using airlock::protocol::FrameType;
using Kind = RouterOutput::Kind;

namespace {

Frame ctl(std::uint32_t channel, const nlohmann::json& j) {
  return Frame{FrameType::control, channel, j.dump()};
}

nlohmann::json body(const RouterOutput& o) { return nlohmann::json::parse(o.frame.payload); }

const nlohmann::json kExec = {{"op", "exec"}, {"argv", {"echo", "hello world"}}};

}  // namespace

TEST_CASE("router: two clients with the same channel id get distinct guest channels") {
  Router r;
  auto a = r.on_client_frame(1, ctl(1, kExec), 1000);
  auto b = r.on_client_frame(2, ctl(1, kExec), 1000);
  REQUIRE(a.size() == 1);
  REQUIRE(b.size() == 1);
  CHECK(a[0].kind == Kind::to_guest);
  CHECK(b[0].kind == Kind::to_guest);
  CHECK(a[0].frame.channel != b[0].frame.channel);
  CHECK(a[0].frame.channel != 0);
  CHECK(body(a[0]) == kExec);  // forwarded unchanged

  // Output on b's guest channel reaches client 2 on its own channel 1.
  auto out = r.on_guest_frame(Frame{FrameType::stdout_data, b[0].frame.channel, "hi"}, 1001);
  REQUIRE(out.size() == 1);
  CHECK(out[0].kind == Kind::to_client);
  CHECK(out[0].client == 2);
  CHECK(out[0].frame.channel == 1);
  CHECK(out[0].frame.type == FrameType::stdout_data);
  CHECK(out[0].frame.payload == "hi");
}

TEST_CASE("router: exec exit ends the route and emits an exec audit event") {
  Router r;
  const auto g = r.on_client_frame(7, ctl(3, kExec), 1000)[0].frame.channel;
  CHECK(r.on_guest_frame(ctl(g, {{"op", "started"}, {"pid", 42}}), 1001).size() == 1);
  auto out = r.on_guest_frame(ctl(g, {{"op", "exit"}, {"exit_code", 3}, {"duration_ms", 250}}), 1300);
  REQUIRE(out.size() == 2);
  // The event comes first: a client that has seen the exit finds it in the log.
  CHECK(out[0].kind == Kind::audit);
  CHECK(out[0].json["type"] == "exec");
  CHECK(out[0].json["exec"]["command"] == "echo 'hello world'");
  CHECK(out[0].json["exec"]["exit_code"] == 3);
  CHECK(out[0].json["exec"]["duration_ms"] == 250);
  CHECK(out[1].kind == Kind::to_client);
  CHECK(body(out[1])["exit_code"] == 3);
  CHECK(r.open_routes() == 0);
  // A late frame on the finished channel is dropped and counted.
  CHECK(r.on_guest_frame(Frame{FrameType::stdout_data, g, "late"}, 1400).empty());
  CHECK(r.counters().guest_unknown_channel == 1);
}

TEST_CASE("router: exec start failure is audited with the error code") {
  Router r;
  const auto g = r.on_client_frame(1, ctl(1, {{"op", "exec"}, {"shell", "nope | wc"}}), 0)[0].frame.channel;
  auto out = r.on_guest_frame(ctl(g, {{"op", "error"}, {"code", "not_found"}, {"message", "x"}}), 5);
  REQUIRE(out.size() == 2);
  CHECK(out[0].json["exec"]["command"] == "nope | wc");
  CHECK(out[0].json["exec"]["error"] == "not_found");
  CHECK(out[0].json["exec"]["exit_code"] == -1);
  CHECK(out[0].json["exec"]["duration_ms"] == 5);
  CHECK(out[1].kind == Kind::to_client);
}

TEST_CASE("router: stdin and in-flight control go to the request's guest channel") {
  Router r;
  const auto g = r.on_client_frame(1, ctl(5, kExec), 0)[0].frame.channel;
  auto in = r.on_client_frame(1, Frame{FrameType::stdin_data, 5, "input"}, 1);
  REQUIRE(in.size() == 1);
  CHECK(in[0].frame.channel == g);
  CHECK(in[0].frame.type == FrameType::stdin_data);
  auto sig = r.on_client_frame(1, ctl(5, {{"op", "signal"}, {"signal", 15}}), 2);
  REQUIRE(sig.size() == 1);
  CHECK(sig[0].kind == Kind::to_guest);
  CHECK(sig[0].frame.channel == g);
  // A second request on a busy channel is refused.
  auto busy = r.on_client_frame(1, ctl(5, kExec), 3);
  REQUIRE(busy.size() == 1);
  CHECK(busy[0].kind == Kind::to_client);
  CHECK(body(busy[0])["code"] == "busy");
  // stdin on a channel with no request is dropped.
  CHECK(r.on_client_frame(1, Frame{FrameType::stdin_data, 9, "x"}, 4).empty());
  CHECK(r.counters().client_dropped == 1);
}

TEST_CASE("router: file.read ends at the empty file_data frame") {
  Router r;
  const auto g = r.on_client_frame(1, ctl(2, {{"op", "file.read"}, {"path", "/etc/hostname"}}), 0)[0]
                     .frame.channel;
  // Data before the ok header is not expected.
  CHECK(r.on_guest_frame(Frame{FrameType::file_data, g, "early"}, 1).empty());
  CHECK(r.on_guest_frame(ctl(g, {{"op", "ok"}, {"size", 3}}), 1).size() == 1);
  CHECK(r.on_guest_frame(Frame{FrameType::file_data, g, "abc"}, 1).size() == 1);
  CHECK(r.open_routes() == 1);
  auto end = r.on_guest_frame(Frame{FrameType::file_data, g, ""}, 1);
  REQUIRE(end.size() == 1);
  CHECK(end[0].frame.channel == 2);
  CHECK(r.open_routes() == 0);
}

TEST_CASE("router: file.write forwards data and ends on ok") {
  Router r;
  const auto g = r.on_client_frame(1, ctl(2, {{"op", "file.write"}, {"path", "/w/x"}}), 0)[0].frame.channel;
  auto data = r.on_client_frame(1, Frame{FrameType::file_data, 2, "bytes"}, 0);
  REQUIRE(data.size() == 1);
  CHECK(data[0].frame.channel == g);
  CHECK(r.on_guest_frame(ctl(g, {{"op", "ok"}, {"size", 5}}), 0).size() == 1);
  CHECK(r.open_routes() == 0);
  // The client may reuse its channel once the request is done.
  CHECK(r.on_client_frame(1, ctl(2, {{"op", "file.stat"}, {"path", "/w/x"}}), 0)[0].kind == Kind::to_guest);
}

TEST_CASE("router: host ops are handed to the supervisor") {
  Router r;
  auto out = r.on_client_frame(4, ctl(0, {{"op", "status"}}), 0);
  REQUIRE(out.size() == 1);
  CHECK(out[0].kind == Kind::host_request);
  CHECK(out[0].client == 4);
  CHECK(out[0].json["op"] == "status");
  CHECK(r.on_client_frame(4, ctl(6, {{"op", "events"}, {"follow", true}}), 0)[0].kind == Kind::host_request);
  CHECK(r.on_client_frame(4, ctl(6, {{"op", "stop"}}), 0)[0].kind == Kind::host_request);
}

TEST_CASE("router: bad client requests are answered with errors") {
  Router r;
  auto unknown = r.on_client_frame(1, ctl(1, {{"op", "format_disk"}}), 0);
  CHECK(body(unknown[0])["code"] == "invalid");
  auto zero = r.on_client_frame(1, ctl(0, kExec), 0);
  CHECK(body(zero[0])["code"] == "invalid");
  auto junk = r.on_client_frame(1, Frame{FrameType::control, 1, "not json"}, 0);
  CHECK(body(junk[0])["code"] == "invalid");
  CHECK(r.open_routes() == 0);
}

TEST_CASE("router: per-client cap") {
  Router r;
  for (std::uint32_t c = 1; c <= Router::kMaxChannelsPerClient; ++c) {
    CHECK(r.on_client_frame(1, ctl(c, kExec), 0)[0].kind == Kind::to_guest);
  }
  auto over = r.on_client_frame(1, ctl(1000, kExec), 0);
  CHECK(body(over[0])["code"] == "busy");
  CHECK(r.on_client_frame(2, ctl(1, kExec), 0)[0].kind == Kind::to_guest);  // others unaffected
}

TEST_CASE("router: a client that disconnects has its requests cancelled") {
  Router r;
  const auto g = r.on_client_frame(1, ctl(1, kExec), 0)[0].frame.channel;
  auto out = r.on_client_closed(1);
  REQUIRE(out.size() == 1);
  CHECK(out[0].kind == Kind::to_guest);
  CHECK(out[0].frame.channel == g);
  CHECK(body(out[0])["op"] == "cancel");
  // Output still arriving is dropped, but the exit is still audited.
  CHECK(r.on_guest_frame(Frame{FrameType::stdout_data, g, "x"}, 1).empty());
  auto exit = r.on_guest_frame(ctl(g, {{"op", "exit"}, {"exit_code", 137}}), 2);
  REQUIRE(exit.size() == 1);
  CHECK(exit[0].kind == Kind::audit);
  CHECK(r.open_routes() == 0);
}

TEST_CASE("router: guest hello, log and file events on channel 0") {
  Router r;
  auto hello = r.on_guest_frame(ctl(0, {{"op", "hello"}, {"version", 1}, {"boot_ms", 900}}), 0);
  REQUIRE(hello.size() == 1);
  CHECK(hello[0].kind == Kind::hello);
  CHECK(hello[0].json["boot_ms"] == 900);
  auto log = r.on_guest_frame(ctl(0, {{"op", "log"}, {"level", "warn"}, {"message", "m"}}), 0);
  CHECK(log[0].kind == Kind::guest_log);
  auto ev = r.on_guest_frame(
      ctl(0, {{"op", "event"},
              {"file", {{"op", "rename"}, {"path", "/workspace/b"}, {"from", "/workspace/a"},
                        {"size", 3}, {"evil", "x"}}}}),
      0);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].kind == Kind::audit);
  CHECK(ev[0].json == nlohmann::json{{"type", "file"},
                                     {"file", {{"op", "rename"}, {"path", "/workspace/b"},
                                               {"from", "/workspace/a"}, {"size", 3}}}});
}

TEST_CASE("router: hostile guest input is dropped and counted, never crashes") {
  Router r;
  CHECK(r.on_guest_frame(Frame{FrameType::control, 0, "\xff\xfe"}, 0).empty());
  CHECK(r.on_guest_frame(Frame{FrameType::control, 0, "[]"}, 0).empty());
  CHECK(r.on_guest_frame(ctl(0, {{"op", "exec"}, {"argv", {"sh"}}}), 0).empty());
  CHECK(r.on_guest_frame(ctl(0, {{"op", "event"}, {"file", {{"op", "chmod"}, {"path", "/x"}}}}), 0).empty());
  CHECK(r.on_guest_frame(ctl(0, {{"op", "event"}, {"file", {{"op", "write"}, {"path", 5}}}}), 0).empty());
  CHECK(r.on_guest_frame(ctl(0, {{"op", "event"}, {"file", "x"}}), 0).empty());
  CHECK(r.on_guest_frame(ctl(0, {{"op", "event"}, {"file", {{"op", "write"},
                                                            {"path", std::string(5000, 'a')}}}}),
                         0).empty());
  CHECK(r.on_guest_frame(Frame{FrameType::stdout_data, 0, "x"}, 0).empty());
  CHECK(r.on_guest_frame(Frame{FrameType::stdout_data, 77, "x"}, 0).empty());
  CHECK(r.on_guest_frame(ctl(77, {{"op", "exit"}}), 0).empty());
  // A negative size is dropped from the event, the rest kept.
  auto ev = r.on_guest_frame(ctl(0, {{"op", "event"}, {"file", {{"op", "write"}, {"path", "/w"}, {"size", -1}}}}), 0);
  REQUIRE(ev.size() == 1);
  CHECK_FALSE(ev[0].json["file"].contains("size"));
  // A guest stdout frame on a file.write route is not expected.
  const auto g = r.on_client_frame(1, ctl(1, {{"op", "file.write"}, {"path", "/w"}}), 0)[0].frame.channel;
  CHECK(r.on_guest_frame(Frame{FrameType::stdout_data, g, "x"}, 0).empty());
  // exit with a non-integer code still ends the exec and is audited with -1.
  const auto e = r.on_client_frame(1, ctl(2, kExec), 0)[0].frame.channel;
  auto out = r.on_guest_frame(ctl(e, {{"op", "exit"}, {"exit_code", "zero"}}), 0);
  REQUIRE(out.size() == 2);
  CHECK(out[0].json["exec"]["exit_code"] == -1);
  CHECK(r.counters().guest_bad_control >= 4);
  CHECK(r.counters().guest_bad_event >= 4);
}

TEST_CASE("router: guest loss answers every open request") {
  Router r;
  r.on_client_frame(1, ctl(1, kExec), 0);
  r.on_client_frame(2, ctl(9, {{"op", "file.list"}, {"path", "/"}}), 0);
  auto out = r.on_guest_lost("the VM stopped", 5000);
  REQUIRE(out.size() == 3);
  // The running exec's record first, saying how it ended.
  CHECK(out[0].kind == Kind::audit);
  CHECK(out[0].json["exec"]["error"] == "vm_stopped");
  CHECK(out[0].json["exec"]["duration_ms"] == 5000);
  for (std::size_t i = 1; i < out.size(); ++i) {
    CHECK(out[i].kind == Kind::to_client);
    CHECK(body(out[i])["op"] == "error");
    CHECK(body(out[i])["code"] == "vm_stopped");
  }
  CHECK(r.open_routes() == 0);
}

TEST_CASE("shell_join quotes only what needs it") {
  CHECK(Router::shell_join({{"argv", {"ls", "-l", "/tmp"}}}) == "ls -l /tmp");
  CHECK(Router::shell_join({{"argv", {"echo", "it's", ""}}}) == "echo 'it'\\''s' ''");
  CHECK(Router::shell_join({{"argv", {"a;b", "$HOME"}}}) == "'a;b' '$HOME'");
  CHECK(Router::shell_join({{"shell", "echo hi | wc"}}) == "echo hi | wc");
  CHECK(Router::shell_join({{"argv", "notalist"}}).empty());
}

TEST_CASE("router: a guest that stops answering fails open requests after a ping, with their records") {
  Router r;
  const auto g = r.on_client_frame(7, ctl(3, kExec), 1000)[0].frame.channel;
  CHECK(r.on_tick(1000 + Router::kPingAfterMs - 1).empty());  // quiet, not yet suspicious
  auto ping = r.on_tick(1000 + Router::kPingAfterMs);
  REQUIRE(ping.size() == 1);
  CHECK(ping[0].kind == Kind::to_guest);
  CHECK(ping[0].frame.channel == 0);
  CHECK(body(ping[0])["op"] == "ping");
  CHECK(r.on_tick(1000 + Router::kPingAfterMs + 1000).empty());  // one ping at a time

  SUBCASE("the guest answers: a long quiet command is left alone") {
    const std::int64_t t = 1000 + Router::kPingAfterMs + 2000;
    CHECK(r.on_guest_frame(ctl(0, {{"op", "pong"}}), t).empty());
    CHECK(r.counters().guest_bad_control == 0);
    CHECK(r.on_tick(t + Router::kPingAfterMs - 1).empty());
    CHECK(r.on_tick(t + Router::kPingAfterMs).size() == 1);  // and probed again later
  }
  SUBCASE("no answer: the client gets a timeout, the exec its record, the guest a cancel") {
    auto out = r.on_tick(1000 + Router::kPingAfterMs + Router::kWedgedAfterMs);
    REQUIRE(out.size() == 3);
    CHECK(out[0].kind == Kind::audit);
    CHECK(out[0].json["exec"]["error"] == "guest_unresponsive");
    CHECK(out[1].kind == Kind::to_client);
    CHECK(out[1].client == 7);
    CHECK(out[1].frame.channel == 3);
    CHECK(body(out[1])["code"] == "timeout");
    CHECK(body(out[1])["message"].get<std::string>().find("wedged") != std::string::npos);
    CHECK(out[2].kind == Kind::to_guest);
    CHECK(out[2].frame.channel == g);
    CHECK(body(out[2])["op"] == "cancel");
    // A late reply goes nowhere and makes no second record; the client may reuse its id.
    CHECK(r.on_guest_frame(ctl(g, {{"op", "exit"}, {"exit_code", 0}}), 40000).empty());
    CHECK(r.counters().guest_unknown_channel == 1);
    CHECK(r.open_routes() == 0);
    CHECK(r.on_client_frame(7, ctl(3, kExec), 40001)[0].kind == Kind::to_guest);
  }
}

TEST_CASE("router: no open request, no ping") {
  Router r;
  CHECK(r.on_tick(1'000'000).empty());
}
