// The API's pure core: base64, JSON-RPC parsing, line framing, every method's params.
#include <doctest/doctest.h>

#include "runtime/api/base64.hpp"
#include "runtime/api/jsonrpc.hpp"
#include "runtime/api/line_splitter.hpp"
#include "runtime/api/methods.hpp"

using namespace airlock::api;
using nlohmann::json;

namespace {

ApiError refused(const std::string& method, const json& params) {
  auto parsed = parse_params(method, params);
  REQUIRE(std::holds_alternative<ApiError>(parsed));
  return std::get<ApiError>(parsed);
}

template <typename T>
T accepted(const std::string& method, const json& params) {
  auto parsed = parse_params(method, params);
  if (auto* e = std::get_if<ApiError>(&parsed)) FAIL(e->message);
  return std::get<T>(std::get<MethodParams>(parsed));
}

}  // namespace

TEST_CASE("base64: RFC 4648 vectors and strict decoding") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"}};
  for (auto [plain, coded] : vectors) {
    CHECK(base64_encode(plain) == coded);
    CHECK(base64_decode(coded) == std::string(plain));
  }
  const std::string all = [] {
    std::string s;
    for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
    return s;
  }();
  CHECK(base64_decode(base64_encode(all)) == all);
  for (const char* bad : {"Zg=", "Z===", "Zm9v!", "Zm=v", "Zg==Zg==", "Zm9v\n"}) {
    CAPTURE(bad);
    CHECK_FALSE(base64_decode(bad));
  }
}

TEST_CASE("jsonrpc: requests, notifications, responses to ignore, and what is refused") {
  auto one = [](const std::string& line) {
    auto m = parse_message(line);
    REQUIRE(m.items.size() == 1);
    return m.items[0];
  };
  auto request = one(R"({"jsonrpc":"2.0","id":7,"method":"sandbox.list"})");
  REQUIRE(request.call);
  CHECK(request.call->id == json(7));
  CHECK(request.call->params == json::object());
  auto notice = one(R"({"jsonrpc":"2.0","method":"exec.stdin","params":{"exec_id":"x"}})");
  REQUIRE(notice.call);
  CHECK_FALSE(notice.call->id);
  auto null_id = one(R"({"jsonrpc":"2.0","id":null,"method":"m"})");
  REQUIRE(null_id.call);
  CHECK(null_id.call->id == json(nullptr));  // a request (with a null id), not a notification
  auto response = one(R"({"jsonrpc":"2.0","id":1,"result":{}})");
  CHECK_FALSE(response.call);
  CHECK_FALSE(response.error);

  CHECK((*one("{").error)["error"]["code"] == kParseError);
  CHECK((*one(R"({"jsonrpc":"2.0","id":2,"method":5})").error)["id"] == 2);
  CHECK((*one(R"({"jsonrpc":"2.0","id":{},"method":"m"})").error)["id"] == nullptr);
  CHECK((*one(R"({"id":3,"method":"m"})").error)["error"]["code"] == kInvalidRequest);
  CHECK((*one(R"({"jsonrpc":"2.0","method":"m","params":3})").error)["error"]["code"] == kInvalidRequest);
  CHECK((*one("[]").error)["error"]["code"] == kInvalidRequest);
  auto batch = parse_message(R"([{"jsonrpc":"2.0","id":1,"method":"a"},1,{"jsonrpc":"2.0","method":"b"}])");
  CHECK(batch.batch);
  REQUIRE(batch.items.size() == 3);
  CHECK(batch.items[0].call);
  CHECK(batch.items[1].error);
  CHECK(batch.items[2].call);
  // Responses name the kind; invalid UTF-8 in a message can't break the line.
  const json e = error_response(1, -32001, "no", json{{"kind", "vm_not_found"}});
  CHECK(e["error"]["data"]["kind"] == "vm_not_found");
  CHECK(to_line(notification("event", json{{"bytes", std::string("\xff\xfe")}})).find("event") != std::string::npos);
}

TEST_CASE("line splitter: the same lines however the bytes are split; oversized lines cost one error") {
  const std::string stream = "{\"a\":1}\n\n  \n{\"b\":2}\r\n" + std::string(100, 'x') + "\n{\"c\":3}\n{\"tail\"";
  LineSplitter whole(50);
  auto expected = whole.feed(stream);
  REQUIRE(expected.size() == 4);
  CHECK(expected[0] == std::optional<std::string>("{\"a\":1}"));
  CHECK(expected[1] == std::optional<std::string>("{\"b\":2}"));
  CHECK_FALSE(expected[2].has_value());  // the 100-byte line, reported once
  CHECK(expected[3] == std::optional<std::string>("{\"c\":3}"));
  for (std::size_t step = 1; step < 20; ++step) {
    LineSplitter chunked(50);
    std::vector<std::optional<std::string>> got;
    for (std::size_t at = 0; at < stream.size(); at += step) {
      for (auto& l : chunked.feed(std::string_view(stream).substr(at, step))) got.push_back(l);
    }
    CHECK(got == expected);
  }
}

TEST_CASE("params: exec takes exactly one of argv and command, and checks every field") {
  auto e = accepted<ExecParams>("exec.run", {{"id", "vm-1"}, {"argv", {"ls", "-l"}}, {"env", {{"A", "1"}}},
                                             {"cwd", "/tmp"}, {"user", 0}, {"timeout_seconds", 1.5}, {"stdin", "aGk="}});
  CHECK(e.argv == std::vector<std::string>{"ls", "-l"});
  CHECK(e.user == "0");
  CHECK(e.timeout_ms == 1500);
  CHECK(e.stdin_data == std::optional<std::string>("hi"));
  auto s = accepted<ExecParams>("exec.start", {{"id", "vm-1"}, {"command", "echo hi | wc"}, {"stdin", true}, {"tty", true},
                                               {"rows", 40}, {"cols", 120}});
  CHECK(s.command == std::optional<std::string>("echo hi | wc"));
  CHECK(s.stdin_open);
  CHECK(s.rows == 40);
  CHECK(refused("exec.run", {{"id", "vm-1"}}).message.find("exactly one") != std::string::npos);
  CHECK(refused("exec.run", {{"id", "vm-1"}, {"argv", {"a"}}, {"command", "b"}}).rpc_code == kInvalidParams);
  CHECK(refused("exec.run", {{"id", "vm-1"}, {"argv", {"a", 1}}}).message.find("argv") != std::string::npos);
  CHECK(refused("exec.run", {{"id", "vm-1"}, {"argv", {"a"}}, {"stdin", true}}).message.find("exec.start") != std::string::npos);
  CHECK(refused("exec.run", {{"id", "vm-1"}, {"argv", {"a"}}, {"timeout_seconds", -1}}).message.find("timeout") != std::string::npos);
  CHECK(refused("exec.run", {{"id", "vm-1"}, {"argv", {"a"}}, {"cwd", "rel"}}).message.find("cwd") != std::string::npos);
  CHECK(refused("exec.run", {{"id", "vm-1"}, {"argv", {"a"}}, {"env", {{"A", 1}}}}).message.find("env.A") != std::string::npos);
  CHECK(refused("exec.run", {{"argv", {"a"}}}).message.find("\"id\"") != std::string::npos);
  const ApiError typo = refused("exec.run", {{"id", "vm-1"}, {"argv", {"a"}}, {"timeout", 3}});
  CHECK(typo.message.find("did you mean \"timeout_seconds\"") != std::string::npos);
  CHECK(typo.kind == airlock::runtime::ErrorKind::invalid_config);
  CHECK(refused("exec.run", json::array({1, 2})).message.find("object") != std::string::npos);
}

TEST_CASE("params: signals by number or name; files and transfers") {
  CHECK(parse_signal(9) == 9);
  CHECK(parse_signal("SIGTERM") == 15);
  CHECK(parse_signal("INT") == 2);
  CHECK(parse_signal("15") == 15);
  CHECK(parse_signal("SIGNOPE") == 0);
  CHECK(parse_signal(65) == 0);
  CHECK(accepted<ExecSignalParams>("exec.signal", {{"exec_id", "ex-1"}}).signal == 15);
  CHECK(refused("exec.signal", {{"exec_id", "ex-1"}, {"signal", "HUPP"}}).rpc_code == kInvalidParams);
  auto w = accepted<FileWriteParams>("file.write", {{"id", "vm-1"}, {"path", "/w/a"}, {"data", ""}, {"mode", 0755}});
  CHECK(w.data.empty());
  CHECK(w.mode == 0755);
  CHECK(refused("file.write", {{"id", "vm-1"}, {"path", "/w/a"}}).message.find("data") != std::string::npos);
  CHECK(refused("file.write", {{"id", "vm-1"}, {"path", "/w/a"}, {"data", "!!"}}).message.find("base64") != std::string::npos);
  CHECK(refused("file.write", {{"id", "vm-1"}, {"path", "/w/a"}, {"data", ""}, {"mode", 070000}}).rpc_code == kInvalidParams);
  CHECK(refused("file.read", {{"id", "vm-1"}, {"path", "w/a"}}).message.find("absolute") != std::string::npos);
  CHECK_FALSE(accepted<FilePathParams>("file.stat", {{"id", "vm-1"}, {"path", "/a"}, {"follow", false}}).follow);
  CHECK(accepted<TransferParams>("file.upload", {{"id", "vm-1"}, {"src", "/host/dir"}, {"dst", "/workspace/d"}}).src == "/host/dir");
  CHECK(refused("file.upload", {{"id", "vm-1"}, {"src", "rel"}, {"dst", "/w"}}).message.find("host path") != std::string::npos);
  CHECK(refused("file.download", {{"id", "vm-1"}, {"src", "/w"}, {"dst", "rel"}}).message.find("host path") != std::string::npos);
  CHECK(accepted<SubscribeParams>("events.subscribe", {{"id", "vm-1"}, {"from_seq", 5}}).from_seq == 5);
  CHECK(refused("events.subscribe", {{"id", "vm-1"}, {"follow", "yes"}}).rpc_code == kInvalidParams);
  CHECK(refused("no.such", json::object()).rpc_code == kMethodNotFound);
  CHECK(refused("sandbox.create", {{"base_dir", "rel"}}).message.find("base_dir") != std::string::npos);
  CHECK(accepted<CreateParams>("sandbox.create", {{"config", {{"image", "default"}}}, {"auto_remove", true}}).auto_remove);
  CHECK(method_names().size() == 23);
  for (const auto& m : method_names()) {
    CAPTURE(m);
    auto parsed = parse_params(m, json::object());
    if (auto* e = std::get_if<ApiError>(&parsed)) CHECK(e->rpc_code != kMethodNotFound);
  }
}
