// PolicyScript: the user's Lua 5.4 hook, consulted on every HTTP request the allowlist
// has already allowed. A script can only deny further; it never lets through a host the
// allowlist refused, because it is only asked about requests that passed.
//
// The script API (network.policy_script: FILE in the policy file):
//
//   -- called once per HTTP request (after TLS termination for HTTPS)
//   function on_request(req)
//     -- req.method   "GET"             req.scheme "https" | "http"
//     -- req.host     "api.example.com" (canonical)   req.port 443
//     -- req.path     "/v1/x"           req.query  "a=1" ("" when none)
//     -- req.headers  table: lower-case name -> value (repeated headers joined by ", ")
//     -- return nothing / true            -> allow
//     -- return false                     -> deny  (reason "policy_script")
//     -- return false, "message"          -> deny with a message for the audit event
//   end
//
// Theory of operation. Each PolicyScript owns one fresh lua_State. Loading compiles the
// chunk (text only: precompiled bytecode is refused) and runs its top level once, so
// the script can set up tables and helpers. A script without on_request is valid and
// allows everything. Each call builds a fresh `req` table; no reference to a C++ object
// is ever handed to Lua, so nothing the script keeps can dangle. Globals persist across
// calls (a script may count requests, cache decisions, ...), within the memory limit.
//
// Sandbox. Only these libraries are opened: base, string, table, math, utf8. Removed
// from base: dofile, loadfile, load, collectgarbage, print, warn; string.dump is removed
// too. There is no io, os, package/require, debug or coroutine. pcall and xpcall work,
// but can't catch the instruction-limit error. setmetatable refuses metatables with a
// __gc field, so no finalizer runs outside a call (or at teardown).
//
// Limits. A custom allocator caps the state's memory (Limits::memory_bytes, the state's
// own base use included); an instruction-count hook caps each call, and the top-level
// chunk, at Limits::instructions VM instructions (the default, 10 million, is tens of
// milliseconds). Library functions written in C run to completion between hook checks:
// their memory is capped, and most of them are linear in their input. Lua patterns are
// not: they backtrack, so a pattern with several `.-` or `.*` items over a long
// guest-chosen path or header could take seconds (three `(.-)/` groups over a 300-byte
// path: about 3 s). So string.find, match, gmatch and gsub are priced before they run:
// (n+1)^k for a subject of n bytes and k variable-length items (`*`, `+`, `-`, `%b`, a
// back-reference; a quantified item that ends the pattern only scans, so it is not
// counted),
// times n+1 more when the pattern is not anchored, times 2 for each `?`, and never less
// than n+1, all times the pattern's length + 1; a plain find costs (n+1) times (its
// length + 1). Each call draws on a budget of Limits::pattern_cost per on_request
// (default 100 million: at worst about 0.2 s, measured with backtracking patterns near
// the limit); a call that would exceed it raises an error naming the function and the
// subject's length. A gmatch iterator, priced for one pass, returns nothing for good once
// it has ended (Lua's own would scan again on every further call). The estimate is an upper bound; anchored patterns with at most one
// such item, patterns whose only such item ends them, and plain finds (string.find(s,
// text, 1, true)) are linear in the subject and stay well within budget.
//
// Failing closed. A Lua error, the instruction limit, memory exhaustion, or a result of
// the wrong type (anything but nothing, nil, true, false, or false plus a string) denies
// the request with reason policy_script_error and a message naming the cause. Messages
// (the script's and ours) are cut to kMaxMessageBytes at a UTF-8 boundary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

struct lua_State;

namespace airlock::policy {

namespace reason {
inline constexpr std::string_view policy_script = "policy_script";
inline constexpr std::string_view policy_script_error = "policy_script_error";
}  // namespace reason

// One HTTP request as the script sees it. Header names may be in any case; the script
// sees them lower-cased, with repeated headers joined by ", " in order.
struct ScriptRequest {
  std::string method, scheme, host;
  std::uint16_t port = 0;
  std::string path, query;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct ScriptVerdict {
  bool allowed = true;
  std::string reason;   // "" when allowed; else reason::policy_script or ::policy_script_error
  std::string message;  // the script's message, or the error; at most kMaxMessageBytes
};

struct ScriptLimits {
  std::size_t memory_bytes = std::size_t{16} << 20;
  std::uint64_t instructions = 10'000'000;
  double pattern_cost = 100e6;  // estimated pattern-matching steps per call (see above)
};

class PolicyScript {
 public:
  using Limits = ScriptLimits;

  static constexpr std::size_t kMaxMessageBytes = 256;

  // Compiles the file and runs its top level once. Errors name the file and line
  // ("policy.lua:3: ..."), ready for the policy loader and `airlock policy check`.
  static Result<std::unique_ptr<PolicyScript>> load_file(const std::filesystem::path& file,
                                                         Limits limits = {});
  // Same from memory; chunk_name stands for the file name in messages.
  static Result<std::unique_ptr<PolicyScript>> load_source(std::string_view source,
                                                           std::string chunk_name,
                                                           Limits limits = {});

  ~PolicyScript();
  PolicyScript(const PolicyScript&) = delete;
  PolicyScript& operator=(const PolicyScript&) = delete;

  // Whether the global on_request is currently a function.
  bool has_on_request() const;

  // Asks the script about one request. Never throws; every failure denies.
  ScriptVerdict on_request(const ScriptRequest& request) noexcept;

  // calls: every on_request; denied: every deny, errors included; errors: the
  // policy_script_error denies alone.
  struct Counters {
    std::uint64_t calls = 0;
    std::uint64_t denied = 0;
    std::uint64_t errors = 0;
  };
  const Counters& counters() const { return counters_; }

  // Bookkeeping the allocator and the instruction hook share with the state (public so
  // the C callbacks in script.cpp can name it; not part of the API).
  struct Budget {
    std::size_t memory_limit = 0;
    std::size_t memory_used = 0;
    std::uint64_t instruction_limit = 0;
    std::uint64_t instructions_used = 0;
    bool instructions_exceeded = false;
    double pattern_cost_limit = 0;
    double pattern_cost_used = 0;
  };

 private:
  explicit PolicyScript(Limits limits);

  // Resets the instruction and pattern budgets and arms the count hook before running
  // Lua code.
  void start_budget();
  ScriptVerdict deny_error(std::string message);

  Budget budget_;
  lua_State* state_ = nullptr;
  std::string chunk_name_;
  Counters counters_;
};

}  // namespace airlock::policy
