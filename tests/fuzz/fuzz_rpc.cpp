// libFuzzer target for the JSON-RPC side of the sandbox API: framing, message parsing
// and every method's params.
//
// The first byte seeds the chunk sizes; the rest is a client's byte stream. It is split
// into lines by a LineSplitter fed in pseudo-random chunks (and by one fed everything at
// once: the lines must be the same), each line is parsed as JSON-RPC, and every call's
// params go through parse_params for its method — the same checks the server runs before
// acting. Invariants: nothing throws; a parsed exec has exactly one of argv and command;
// every error has a JSON-RPC code and serialises with a data.kind from the API's list;
// base64 round-trips.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "runtime/api/base64.hpp"
#include "runtime/api/jsonrpc.hpp"
#include "runtime/api/line_splitter.hpp"
#include "runtime/api/methods.hpp"

using namespace airlock::api;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

const std::set<std::string> kKinds = {"blocked",  "host_not_allowed", "secret_leak",    "vm_not_running",
                                      "vm_not_found", "timeout",      "invalid_config", "internal"};

void check_error_response(const nlohmann::json& r) {
  check(r.contains("error") && r["error"].contains("code") && r["error"]["code"].is_number_integer());
  check(kKinds.count(r["error"]["data"]["kind"].get<std::string>()) == 1);
  (void)to_line(r);
}

void run_call(const Call& call) {
  auto parsed = parse_params(call.method, call.params);
  if (auto* error = std::get_if<ApiError>(&parsed)) {
    check(!error->message.empty());
    check_error_response(error_response(call.id.value_or(nullptr), rpc_code_of(*error), error->message, error_data(*error)));
    return;
  }
  const MethodParams& p = std::get<MethodParams>(parsed);
  if (const auto* exec = std::get_if<ExecParams>(&p)) {
    check(exec->argv.empty() == exec->command.has_value());
    check(!exec->id.empty() || exec->id.empty());
    check(exec->rows >= 1 && exec->cols >= 1);
  }
  if (const auto* write = std::get_if<FileWriteParams>(&p)) {
    check(!write->path.empty() && write->path.front() == '/');
    check(write->mode <= 07777);
  }
  if (const auto* signal = std::get_if<ExecSignalParams>(&p)) check(signal->signal >= 1 && signal->signal <= 64);
}

void run_line(const std::string& line) {
  ParsedMessage message = parse_message(line);
  check(!message.items.empty());
  for (const Parsed& item : message.items) {
    if (item.error) check_error_response(*item.error);
    if (item.call) run_call(*item.call);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::uint32_t seed = data[0] | 1u;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  constexpr std::size_t kCap = 1 << 16;

  LineSplitter chunked(kCap), whole(kCap);
  std::vector<std::optional<std::string>> a, b;
  std::size_t at = 0;
  while (at < stream.size()) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t n = std::min<std::size_t>(stream.size() - at, 1 + (seed >> 16) % 97);
    for (auto& line : chunked.feed(stream.substr(at, n))) a.push_back(std::move(line));
    at += n;
  }
  b = whole.feed(stream);
  check(a == b);
  for (const auto& line : a) {
    if (line) run_line(*line);
  }

  // base64 both ways: decoding what was encoded gives the bytes back; valid text
  // re-encodes to itself.
  check(base64_decode(base64_encode(stream)) == std::string(stream));
  if (auto decoded = base64_decode(stream)) check(base64_encode(*decoded) == stream);
  return 0;
}
