// PolicyScript: sandboxed Lua 5.4 request hooks. The API, the sandbox and the limits are
// described at the top of script.hpp.
//
// Lua reports errors with longjmp. So every Lua operation that can raise (allocating,
// running script code, calling metamethods) runs inside lua_pcall, in the C callbacks
// below, whose frames hold no C++ object with a destructor; C++ work that may throw
// (building strings) happens outside Lua, before the protected call or after it. Only
// non-raising API functions (lua_type, lua_toboolean, lua_tolstring on a string value,
// lua_settop, pushing a light C function or pointer) are used unprotected.
#include "policy/script.hpp"

#include <lua.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace airlock::policy {
namespace {

using Budget = PolicyScript::Budget;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The count hook checks the budget every kHookStep VM instructions: often enough to stop
// a runaway loop well under a millisecond past the limit, rarely enough to cost nothing.
constexpr std::uint64_t kHookStep = 1000;

// Base library functions a policy script has no business with: file and code loading,
// control of the collector, and output to the proxy's own stdout/stderr.
constexpr const char* kRemovedGlobals[] = {"dofile", "loadfile", "load", "collectgarbage",
                                           "print", "warn"};

Budget& budget_of(lua_State* L) {
  void* ud = nullptr;
  lua_getallocf(L, &ud);
  return *static_cast<Budget*>(ud);
}

// The allocator: plain realloc/free, refusing any growth past the memory limit. Lua turns
// a refusal into a "not enough memory" error (after an emergency collection).
void* sandbox_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
  Budget& budget = *static_cast<Budget*>(ud);
  std::size_t old = ptr != nullptr ? osize : 0;  // for a new block, osize is a type tag
  if (nsize == 0) {
    std::free(ptr);
    budget.memory_used -= old;
    return nullptr;
  }
  if (nsize > old && nsize - old > budget.memory_limit - budget.memory_used) return nullptr;
  void* block = std::realloc(ptr, nsize);
  if (block == nullptr) return nullptr;
  budget.memory_used = budget.memory_used - old + nsize;
  return block;
}

// Only reachable if a raising Lua call escaped protection, which is a bug here; returning
// lets Lua abort().
int on_panic(lua_State*) { return 0; }

// Raises the instruction-limit error, naming the script line that was running. Once the
// budget is spent every later check raises again, so nothing the script does (pcall in
// a loop, an error handler) gets more time.
void count_hook(lua_State* L, lua_Debug*) {
  Budget& budget = budget_of(L);
  budget.instructions_used += static_cast<std::uint64_t>(lua_gethookcount(L));
  if (budget.instructions_used <= budget.instruction_limit && !budget.instructions_exceeded)
    return;
  budget.instructions_exceeded = true;
  luaL_where(L, 0);
  lua_pushfstring(L, "instruction limit exceeded (%I instructions)",
                  static_cast<lua_Integer>(budget.instruction_limit));
  lua_concat(L, 2);
  lua_error(L);
}

// pcall, except that the instruction-limit error passes through.
int sandbox_pcall(lua_State* L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);  // first result if there is no error
  lua_insert(L, 1);
  int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
  if (budget_of(L).instructions_exceeded) {
    if (status == LUA_OK) lua_pushliteral(L, "instruction limit exceeded");
    return lua_error(L);
  }
  if (status != LUA_OK) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L);
}

// xpcall, except that the instruction-limit error passes through.
int sandbox_xpcall(lua_State* L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);  // the message handler
  lua_pushboolean(L, 1);                // first result
  lua_pushvalue(L, 1);                  // the function
  lua_rotate(L, 3, 2);                  // both below the function's arguments
  int status = lua_pcall(L, n - 2, LUA_MULTRET, 2);
  if (budget_of(L).instructions_exceeded) {
    if (status == LUA_OK) lua_pushliteral(L, "instruction limit exceeded");
    return lua_error(L);
  }
  if (status != LUA_OK) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - 2;
}

// setmetatable, refusing __gc: finalizers could otherwise run outside any call's budget,
// in the middle of the proxy's own work or when the state is closed.
int sandbox_setmetatable(lua_State* L) {
  int type = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, type == LUA_TNIL || type == LUA_TTABLE, 2, "nil or table");
  if (type == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "__gc metamethods are not available in policy scripts");
    lua_pop(L, 1);
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

// The pattern functions string.find, match, gmatch and gsub, in the order of their
// upvalue tags below.
enum PatternFunction : int { kFind, kMatch, kGmatch, kGsub };
constexpr const char* kPatternFunctions[] = {"find", "match", "gmatch", "gsub"};

// The index just past the set that starts at p[i] == '[' (as Lua reads it: an optional
// '^', a leading ']' taken literally, %x escapes), or past m when it is unterminated.
std::size_t skip_set(const char* p, std::size_t m, std::size_t i) {
  ++i;
  if (i < m && p[i] == '^') ++i;
  if (i < m && p[i] == ']') ++i;
  while (i < m && p[i] != ']') i += (p[i] == '%') ? 2 : 1;
  return i + 1;
}

// An upper bound on the steps Lua's backtracking matcher takes for pattern p (m bytes)
// over a subject of n bytes (see script.hpp): every variable-length item can retry at
// each of n+1 positions, each `?` doubles the choices, an unanchored search restarts at
// each position, and each attempt reads the pattern (m+1 steps at most, sets included).
// A variable item that ends the pattern (only closing captures after it) never
// backtracks: whatever length it takes, the rest matches, so it only scans. Only reads p
// within its m bytes; a malformed pattern gets some estimate and then Lua's own error.
double pattern_cost(const char* p, std::size_t m, std::size_t n, bool anchor_counts) {
  const double positions = static_cast<double>(n) + 1;
  double cost = 1;
  std::size_t i = 0;
  if (anchor_counts && m > 0 && p[0] == '^') {
    i = 1;
  } else {
    cost *= positions;
  }
  while (i < m) {
    const char c = p[i];
    if (c == '(' || c == ')') {  // captures, position captures: no matching of their own
      ++i;
      continue;
    }
    bool variable = false;
    bool backref = false;
    if (c == '%' && i + 1 < m) {
      const char e = p[i + 1];
      if (e == 'b') {  // %bxy: scans to the balancing character
        i += 4;
        cost *= positions;
        continue;
      }
      if (e == 'f') {  // %f[set]: a frontier, one position; skip its set
        i += 2;
        if (i < m && p[i] == '[') i = skip_set(p, m, i);
        continue;
      }
      backref = e >= '1' && e <= '9';  // compares a whole capture, and can fail anywhere
      variable = backref;
      i += 2;
    } else if (c == '[') {
      i = skip_set(p, m, i);
    } else {
      ++i;  // a literal, '.', or a final '$'
    }
    if (i < m && (p[i] == '*' || p[i] == '+' || p[i] == '-')) {
      variable = true;
      ++i;
    } else if (i < m && p[i] == '?') {
      cost *= 2;
      ++i;
    }
    if (variable) {
      std::size_t rest = i;
      while (rest < m && p[rest] == ')') ++rest;
      if (rest < m || backref) cost *= positions;
    }
    if (cost > 1e300) return 1e300;
  }
  return std::max(cost, positions) * (static_cast<double>(m) + 1);  // at least one scan
}

// The iterator a priced gmatch returns (upvalue 1: Lua's own, upvalue 2: whether it has
// ended). Lua's iterator rescans from its last match each time it is called after the
// end; the price covered one pass, so once it returns nothing it is not called again.
int finished_once_iterator(lua_State* L) {
  if (lua_toboolean(L, lua_upvalueindex(2))) return 0;
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_call(L, 0, LUA_MULTRET);
  if (lua_gettop(L) == 0 || lua_isnil(L, 1)) {
    lua_pushboolean(L, 1);
    lua_replace(L, lua_upvalueindex(2));
  }
  return lua_gettop(L);
}

// string.find/match/gmatch/gsub priced against the call's pattern budget, then run
// (upvalue 1: the library's function, upvalue 2: its PatternFunction).
int priced_pattern_call(lua_State* L) {
  const auto which = static_cast<PatternFunction>(lua_tointeger(L, lua_upvalueindex(2)));
  std::size_t n = 0;
  std::size_t m = 0;
  luaL_checklstring(L, 1, &n);
  const char* pattern = luaL_checklstring(L, 2, &m);
  const bool plain = which == kFind && lua_toboolean(L, 4);
  // gmatch and gsub go over the whole subject: priced as unanchored.
  const double cost = plain ? (static_cast<double>(n) + 1) * (static_cast<double>(m) + 1)
                            : pattern_cost(pattern, m, n, which == kFind || which == kMatch);
  Budget& budget = budget_of(L);
  budget.pattern_cost_used += cost;
  if (budget.pattern_cost_used > budget.pattern_cost_limit) {
    budget.pattern_cost_used = budget.pattern_cost_limit + 1;  // stays spent for this call
    return luaL_error(L,
                      "string.%s: pattern too costly for a %I-byte subject (use an anchored "
                      "pattern or a plain find)",
                      kPatternFunctions[which], static_cast<lua_Integer>(n));
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  if (which == kGmatch && lua_gettop(L) == 1 && lua_isfunction(L, 1)) {
    lua_pushboolean(L, 0);
    lua_pushcclosure(L, finished_once_iterator, 2);
  }
  return lua_gettop(L);
}

// Opens the allowed libraries and strips or replaces what the sandbox forbids.
int open_sandbox(lua_State* L) {
  const luaL_Reg libraries[] = {{LUA_GNAME, luaopen_base},     {LUA_STRLIBNAME, luaopen_string},
                                {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
                                {LUA_UTF8LIBNAME, luaopen_utf8}};
  for (const luaL_Reg& library : libraries) {
    luaL_requiref(L, library.name, library.func, 1);
    lua_pop(L, 1);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  for (const char* name : kRemovedGlobals) {
    lua_pushnil(L);
    lua_setfield(L, -2, name);
  }
  const luaL_Reg replaced[] = {{"pcall", sandbox_pcall},
                               {"xpcall", sandbox_xpcall},
                               {"setmetatable", sandbox_setmetatable},
                               {nullptr, nullptr}};
  luaL_setfuncs(L, replaced, 0);
  lua_getfield(L, -1, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");  // bytecode is useless without load, and refused anyway
  // The string table is also the strings' __index, so s:find(...) is priced too.
  for (int which = kFind; which <= kGsub; ++which) {
    lua_getfield(L, -1, kPatternFunctions[which]);
    lua_pushinteger(L, which);
    lua_pushcclosure(L, priced_pattern_call, 2);
    lua_setfield(L, -2, kPatternFunctions[which]);
  }
  lua_settop(L, 0);
  return 0;
}

// What the protected call to on_request works on: the request, its headers prepared in
// C++ (lower-cased, joined), and whether the hook exists.
struct CallFrame {
  const ScriptRequest* request = nullptr;
  const HeaderList* headers = nullptr;
  bool found = false;
};

void set_string_field(lua_State* L, const char* key, const std::string& value) {
  lua_pushlstring(L, value.data(), value.size());
  lua_setfield(L, -2, key);
}

// Pushes the global on_request (raw lookup: no metamethod of _G runs) and returns its type.
int push_on_request(lua_State* L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_pushliteral(L, "on_request");
  int type = lua_rawget(L, -2);
  lua_remove(L, -2);
  return type;
}

// Protected: builds the fresh req table and calls on_request(req), leaving two results.
int call_on_request(lua_State* L) {
  auto* frame = static_cast<CallFrame*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  int type = push_on_request(L);
  if (type == LUA_TNIL) return 0;
  if (type != LUA_TFUNCTION)
    return luaL_error(L, "on_request is a %s, not a function", lua_typename(L, type));
  frame->found = true;
  const ScriptRequest& request = *frame->request;
  lua_createtable(L, 0, 7);
  set_string_field(L, "method", request.method);
  set_string_field(L, "scheme", request.scheme);
  set_string_field(L, "host", request.host);
  lua_pushinteger(L, request.port);
  lua_setfield(L, -2, "port");
  set_string_field(L, "path", request.path);
  set_string_field(L, "query", request.query);
  const HeaderList& headers = *frame->headers;
  lua_createtable(L, 0, static_cast<int>(std::min<std::size_t>(headers.size(), 1024)));
  for (const auto& [name, value] : headers) {
    lua_pushlstring(L, name.data(), name.size());
    lua_pushlstring(L, value.data(), value.size());
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "headers");
  lua_call(L, 1, 2);
  return 2;
}

// Protected: leaves whether on_request is a function.
int probe_on_request(lua_State* L) {
  lua_pushboolean(L, push_on_request(L) == LUA_TFUNCTION);
  return 1;
}

// Lower-cases header names and joins repeated ones with ", ", in first-seen order.
HeaderList normalise_headers(const HeaderList& headers) {
  HeaderList out;
  std::unordered_map<std::string, std::size_t> index;
  for (const auto& [name, value] : headers) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) {
      return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    });
    auto [it, inserted] = index.try_emplace(lower, out.size());
    if (inserted) {
      out.emplace_back(std::move(lower), value);
    } else {
      std::string& joined = out[it->second].second;
      joined += ", ";
      joined += value;
    }
  }
  return out;
}

// Cuts text to at most max bytes without splitting a UTF-8 sequence.
std::string truncate_message(std::string text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  text.resize(n);
  return text;
}

// The text of the value at the top of the stack, without calling any metamethod.
std::string describe_value(lua_State* L, int index) {
  switch (lua_type(L, index)) {
    case LUA_TSTRING: {
      std::size_t size = 0;
      const char* text = lua_tolstring(L, index, &size);
      return std::string(text, size);
    }
    case LUA_TNUMBER:
      return lua_isinteger(L, index) ? std::to_string(lua_tointeger(L, index))
                                     : std::to_string(lua_tonumber(L, index));
    default:
      return std::string("(error object is a ") + lua_typename(L, lua_type(L, index)) +
             " value)";
  }
}

// The message for a failed protected call whose error object is on top of the stack.
std::string error_message(lua_State* L, int status, const Budget& budget,
                          const std::string& chunk_name) {
  // Lua raises ERRMEM when its core runs out; the auxiliary buffer (string.rep,
  // table.concat, ...) raises an ordinary error with the same text.
  bool out_of_memory = status == LUA_ERRMEM;
  if (status == LUA_ERRRUN && lua_type(L, -1) == LUA_TSTRING)
    out_of_memory = describe_value(L, -1) == "not enough memory";
  if (out_of_memory)
    return chunk_name + ": memory limit exceeded (" + std::to_string(budget.memory_limit) +
           " bytes)";
  if (status == LUA_OK) return chunk_name + ": instruction limit exceeded";
  return describe_value(L, -1);
}

}  // namespace

PolicyScript::PolicyScript(Limits limits) {
  budget_.memory_limit = limits.memory_bytes;
  budget_.instruction_limit = limits.instructions;
  budget_.pattern_cost_limit = limits.pattern_cost;
}

PolicyScript::~PolicyScript() {
  if (state_ != nullptr) lua_close(state_);
}

void PolicyScript::start_budget() {
  budget_.instructions_used = 0;
  budget_.instructions_exceeded = false;
  budget_.pattern_cost_used = 0;
  auto step = std::clamp<std::uint64_t>(budget_.instruction_limit, 1, kHookStep);
  lua_sethook(state_, count_hook, LUA_MASKCOUNT, static_cast<int>(step));
}

Result<std::unique_ptr<PolicyScript>> PolicyScript::load_file(const std::filesystem::path& file,
                                                              Limits limits) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error{file.string() + ": cannot open policy script"};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error{file.string() + ": cannot read policy script"};
  return load_source(text.str(), file.string(), limits);
}

Result<std::unique_ptr<PolicyScript>> PolicyScript::load_source(std::string_view source,
                                                                std::string chunk_name,
                                                                Limits limits) {
  std::unique_ptr<PolicyScript> script(new PolicyScript(limits));
  lua_State* L = lua_newstate(sandbox_alloc, &script->budget_);
  if (L == nullptr) return Error{chunk_name + ": memory limit too small for a Lua state"};
  script->state_ = L;
  script->chunk_name_ = chunk_name;
  lua_atpanic(L, on_panic);

  lua_pushcfunction(L, open_sandbox);
  int status = lua_pcall(L, 0, 0, 0);
  if (status != LUA_OK) return Error{error_message(L, status, script->budget_, chunk_name)};

  if (!source.empty() && source.front() == LUA_SIGNATURE[0])
    return Error{chunk_name + ": precompiled Lua bytecode is not accepted, only source text"};

  // "@name" makes Lua print the name as a file name ("policy.lua:3: ..."), keeping its
  // tail when long. Mode "t": precompiled bytecode can crash the VM, so it is refused.
  std::string lua_chunk_name = "@" + chunk_name;
  status = luaL_loadbufferx(L, source.data(), source.size(), lua_chunk_name.c_str(), "t");
  if (status != LUA_OK) return Error{error_message(L, status, script->budget_, chunk_name)};

  script->start_budget();
  status = lua_pcall(L, 0, 0, 0);
  if (status != LUA_OK || script->budget_.instructions_exceeded)
    return Error{error_message(L, status, script->budget_, chunk_name)};
  lua_settop(L, 0);
  return Result<std::unique_ptr<PolicyScript>>(std::move(script));
}

bool PolicyScript::has_on_request() const {
  lua_settop(state_, 0);
  lua_pushcfunction(state_, probe_on_request);
  bool found = lua_pcall(state_, 0, 1, 0) == LUA_OK && lua_toboolean(state_, -1);
  lua_settop(state_, 0);
  return found;
}

ScriptVerdict PolicyScript::deny_error(std::string message) {
  ++counters_.denied;
  ++counters_.errors;
  ScriptVerdict verdict;
  verdict.allowed = false;
  verdict.reason = reason::policy_script_error;
  verdict.message = truncate_message(std::move(message), kMaxMessageBytes);
  return verdict;
}

ScriptVerdict PolicyScript::on_request(const ScriptRequest& request) noexcept {
  ++counters_.calls;
  lua_State* L = state_;
  try {
    HeaderList headers = normalise_headers(request.headers);
    CallFrame frame;
    frame.request = &request;
    frame.headers = &headers;

    start_budget();
    lua_settop(L, 0);
    lua_pushcfunction(L, call_on_request);
    lua_pushlightuserdata(L, &frame);
    int status = lua_pcall(L, 1, LUA_MULTRET, 0);
    if (status != LUA_OK || budget_.instructions_exceeded) {
      std::string message = error_message(L, status, budget_, chunk_name_);
      lua_settop(L, 0);
      lua_gc(L, LUA_GCCOLLECT);  // give the next call back what this one left as garbage
      return deny_error(std::move(message));
    }
    if (!frame.found) {
      lua_settop(L, 0);
      return {};
    }

    // Exactly two results: on_request's first two, nil-padded.
    int first = lua_type(L, -2);
    int second = lua_type(L, -1);
    std::string detail;
    ScriptVerdict verdict;
    if (first == LUA_TNIL && second == LUA_TNIL) {
      // allowed
    } else if (first == LUA_TBOOLEAN && lua_toboolean(L, -2)) {
      // allowed; a message alongside true is ignored
    } else if (first == LUA_TBOOLEAN && (second == LUA_TNIL || second == LUA_TSTRING)) {
      verdict.allowed = false;
      verdict.reason = reason::policy_script;
      if (second == LUA_TSTRING)
        verdict.message = truncate_message(describe_value(L, -1), kMaxMessageBytes);
    } else if (first == LUA_TBOOLEAN) {
      detail = std::string("on_request: the message after false must be a string, got a ") +
               lua_typename(L, second);
    } else if (first == LUA_TNIL) {
      // "nil, message" is Lua's usual failure idiom: refuse to guess what it meant.
      detail = "on_request returned nil and a message: return false, message to deny";
    } else {
      detail = std::string("on_request must return true, false or nothing, got a ") +
               lua_typename(L, first);
    }
    lua_settop(L, 0);
    if (!detail.empty()) return deny_error(std::move(detail));
    if (!verdict.allowed) ++counters_.denied;
    return verdict;
  } catch (const std::exception& e) {
    lua_settop(L, 0);
    return deny_error(std::string("on_request: ") + e.what());
  }
}

}  // namespace airlock::policy
