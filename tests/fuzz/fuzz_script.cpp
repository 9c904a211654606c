// Fuzzes the pattern functions a policy script hands guest bytes to: the input is a
// pattern, a newline, and a subject (a script may well match a header against another
// header). The pricing of string.find/match/gmatch/gsub reads the pattern before Lua
// does; neither may crash, and no call may run long (libFuzzer's -timeout catches a
// pattern the pricing let through too cheaply).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "policy/script.hpp"

namespace {

constexpr std::string_view kScript = R"lua(
function on_request(req)
  local p, s = req.headers["x-pattern"], req.path
  pcall(string.find, s, p)
  pcall(string.find, s, p, 2, true)
  pcall(string.match, s, p)
  pcall(string.gsub, s, p, "%0")
  local ok, it = pcall(string.gmatch, s, p)
  if ok then pcall(function() for _ in it do end; it(); it() end) end
  return true
end)lua";

airlock::policy::PolicyScript& script() {
  static std::unique_ptr<airlock::policy::PolicyScript> loaded = [] {
    auto result = airlock::policy::PolicyScript::load_source(
        kScript, "fuzz.lua", {.memory_bytes = 8u << 20, .instructions = 2'000'000, .pattern_cost = 2e6});
    if (!result) __builtin_trap();
    return std::move(*result);
  }();
  return *loaded;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  airlock::policy::ScriptRequest request;
  request.method = "GET";
  request.scheme = "https";
  request.host = "fuzz.test";
  request.port = 443;
  request.headers.emplace_back("X-Pattern", std::string(input.substr(0, newline)));
  if (newline != std::string_view::npos) request.path = std::string(input.substr(newline + 1));
  const auto verdict = script().on_request(request);
  // The script swallows every pattern error, so only a limit it can't catch denies.
  if (!verdict.allowed && verdict.message.find("limit exceeded") == std::string::npos)
    __builtin_trap();
  return 0;
}
