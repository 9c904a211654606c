// PolicyScript: verdicts, the req table, load errors, the sandbox and its limits.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "policy/script.hpp"

using namespace airlock::policy;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<PolicyScript> load(const std::string& source, PolicyScript::Limits limits = {}) {
  auto script = PolicyScript::load_source(source, "policy.lua", limits);
  if (!script) FAIL("load failed: " << script.error());
  return std::move(*script);
}

std::string load_error(const std::string& source, PolicyScript::Limits limits = {}) {
  auto script = PolicyScript::load_source(source, "policy.lua", limits);
  return script ? std::string() : script.error();
}

ScriptRequest sample_request() {
  ScriptRequest request;
  request.method = "GET";
  request.scheme = "https";
  request.host = "api.example.com";
  request.port = 443;
  request.path = "/v1/x";
  request.query = "a=1";
  request.headers = {{"Accept", "text/html"}, {"X-Tag", "one"}, {"x-tag", "two"}};
  return request;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a script allows by returning nothing, nil or true") {
  for (const char* body : {"", "return", "return nil", "return true", "return true, 'ignored'"}) {
    CAPTURE(body);
    auto script = load(std::string("function on_request(req) ") + body + " end");
    ScriptVerdict verdict = script->on_request(sample_request());
    CHECK(verdict.allowed);
    CHECK(verdict.reason.empty());
    CHECK(verdict.message.empty());
    CHECK(script->counters().calls == 1);
    CHECK(script->counters().denied == 0);
    CHECK(script->counters().errors == 0);
  }
}

TEST_CASE("a script without on_request allows everything") {
  auto script = load("x = 1");
  CHECK_FALSE(script->has_on_request());
  CHECK(script->on_request(sample_request()).allowed);
  CHECK(script->counters().calls == 1);
  CHECK(script->counters().denied == 0);
}

TEST_CASE("returning false denies with reason policy_script") {
  auto script = load("function on_request(req) return false end");
  CHECK(script->has_on_request());
  ScriptVerdict verdict = script->on_request(sample_request());
  CHECK_FALSE(verdict.allowed);
  CHECK(verdict.reason == reason::policy_script);
  CHECK(verdict.message.empty());
  CHECK(script->counters().denied == 1);
  CHECK(script->counters().errors == 0);
}

TEST_CASE("returning false and a message denies with that message") {
  auto script = load("function on_request(req) return false, 'no ' .. req.method end");
  ScriptVerdict verdict = script->on_request(sample_request());
  CHECK_FALSE(verdict.allowed);
  CHECK(verdict.reason == reason::policy_script);
  CHECK(verdict.message == "no GET");
}

TEST_CASE("the req table carries every field, headers lower-cased and joined") {
  auto script = load(R"lua(
    function on_request(req)
      local h = req.headers
      local got = table.concat({req.method, req.scheme, req.host, math.type(req.port),
                                tostring(req.port), req.path, req.query,
                                h["accept"], h["x-tag"], tostring(h["Accept"])}, "|")
      return false, got
    end)lua");
  ScriptVerdict verdict = script->on_request(sample_request());
  CHECK(verdict.message ==
        "GET|https|api.example.com|integer|443|/v1/x|a=1|text/html|one, two|nil");
}

TEST_CASE("an empty query and no headers arrive as an empty string and an empty table") {
  auto script = load(R"lua(
    function on_request(req)
      return false, string.format("[%s] %d", req.query, next(req.headers) == nil and 0 or 1)
    end)lua");
  ScriptRequest request = sample_request();
  request.query.clear();
  request.headers.clear();
  CHECK(script->on_request(request).message == "[] 0");
}

TEST_CASE("each call gets a fresh req table; globals persist across calls") {
  auto script = load(R"lua(
    count = 0
    function on_request(req)
      count = count + 1
      local seen = req.marked
      req.marked = true
      req.headers.accept = "changed"
      return false, count .. ":" .. tostring(seen)
    end)lua");
  CHECK(script->on_request(sample_request()).message == "1:nil");
  CHECK(script->on_request(sample_request()).message == "2:nil");
  CHECK(script->on_request(sample_request()).message == "3:nil");
  CHECK(script->counters().calls == 3);
  CHECK(script->counters().denied == 3);
}

TEST_CASE("a syntax error names the chunk and the line") {
  std::string error = load_error("x = 1\n\nfunction on_request(req)\n  return = 2\nend\n");
  CHECK(starts_with(error, "policy.lua:4:"));
}

TEST_CASE("an error in the top-level chunk fails the load with its line") {
  std::string error = load_error("local a = 1\nerror('setup broke')\n");
  CHECK(starts_with(error, "policy.lua:2:"));
  CHECK(contains(error, "setup broke"));
}

TEST_CASE("precompiled bytecode is refused") {
  std::string error = load_error(std::string("\x1bLua\x54\x00", 6));
  CHECK(starts_with(error, "policy.lua: precompiled"));
}

TEST_CASE("load_file reads a file and names it in errors") {
  fs::path dir = fs::temp_directory_path() / ("airlock-script-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path good = dir / "good.lua";
  fs::path bad = dir / "bad.lua";
  std::ofstream(good) << "function on_request(req) return req.path ~= '/admin' end\n";
  std::ofstream(bad) << "function on_request(req)\n  if then\nend\n";

  auto loaded = PolicyScript::load_file(good);
  REQUIRE(loaded.ok());
  CHECK((*loaded)->on_request(sample_request()).allowed);

  auto failed = PolicyScript::load_file(bad);
  REQUIRE_FALSE(failed.ok());
  CHECK(contains(failed.error(), "bad.lua:2:"));

  auto missing = PolicyScript::load_file(dir / "missing.lua");
  REQUIRE_FALSE(missing.ok());
  CHECK(contains(missing.error(), "missing.lua"));
  fs::remove_all(dir);
}

TEST_CASE("a runtime error denies with policy_script_error and its line") {
  auto script = load("function on_request(req)\n  return req.nothing.field\nend\n");
  ScriptVerdict verdict = script->on_request(sample_request());
  CHECK_FALSE(verdict.allowed);
  CHECK(verdict.reason == reason::policy_script_error);
  CHECK(starts_with(verdict.message, "policy.lua:2:"));
  CHECK(script->counters().errors == 1);
  CHECK(script->counters().denied == 1);
}

TEST_CASE("an error object that is not a string still denies") {
  auto script = load("function on_request(req) error({code = 1}) end");
  ScriptVerdict verdict = script->on_request(sample_request());
  CHECK(verdict.reason == reason::policy_script_error);
  CHECK(verdict.message == "(error object is a table value)");
}

TEST_CASE("a result of the wrong type denies with policy_script_error") {
  for (const char* result : {"'yes'", "1", "{}", "false, 42", "nil, 'why'", "function() end"}) {
    CAPTURE(result);
    auto script = load(std::string("function on_request(req) return ") + result + " end");
    ScriptVerdict verdict = script->on_request(sample_request());
    CHECK_FALSE(verdict.allowed);
    CHECK(verdict.reason == reason::policy_script_error);
    CHECK_FALSE(verdict.message.empty());
    CHECK(script->counters().errors == 1);
  }
}

TEST_CASE("on_request that is not a function denies every request") {
  auto script = load("on_request = 42");
  CHECK_FALSE(script->has_on_request());
  ScriptVerdict verdict = script->on_request(sample_request());
  CHECK(verdict.reason == reason::policy_script_error);
  CHECK(contains(verdict.message, "not a function"));
}

TEST_CASE("an infinite loop hits the instruction limit and the state stays usable") {
  auto script = load(R"lua(
    function on_request(req)
      if req.path == "/spin" then while true do end end
      return false, "fine"
    end)lua",
                     {.memory_bytes = 4u << 20, .instructions = 100'000});
  ScriptRequest spin = sample_request();
  spin.path = "/spin";
  ScriptVerdict verdict = script->on_request(spin);
  CHECK_FALSE(verdict.allowed);
  CHECK(verdict.reason == reason::policy_script_error);
  CHECK(contains(verdict.message, "instruction limit exceeded"));
  CHECK(starts_with(verdict.message, "policy.lua:3:"));

  ScriptVerdict next = script->on_request(sample_request());
  CHECK(next.reason == reason::policy_script);
  CHECK(next.message == "fine");
  CHECK(script->counters().errors == 1);
}

TEST_CASE("pcall and xpcall can't swallow the instruction limit") {
  auto script = load(R"lua(
    function on_request(req)
      while true do
        pcall(function() while true do end end)
        xpcall(function() while true do end end, function(e) return e end)
      end
    end)lua",
                     {.memory_bytes = 4u << 20, .instructions = 100'000});
  ScriptVerdict verdict = script->on_request(sample_request());
  CHECK(verdict.reason == reason::policy_script_error);
  CHECK(contains(verdict.message, "instruction limit exceeded"));
}

TEST_CASE("pcall and xpcall still catch ordinary errors") {
  auto script = load(R"lua(
    function on_request(req)
      local ok, err = pcall(error, "inner", 0)
      local ok2, err2 = xpcall(function() error("again", 0) end, function(e) return "h:" .. e end)
      return false, tostring(ok) .. err .. tostring(ok2) .. err2
    end)lua");
  CHECK(script->on_request(sample_request()).message == "falseinnerfalseh:again");
}

TEST_CASE("a backtracking pattern over a long guest-chosen path is refused before it runs") {
  auto script = load(R"lua(
    function on_request(req)
      local a, b, c = req.path:match("(.-)/(.-)/(.-)/x")
      return true
    end)lua");
  ScriptRequest request = sample_request();
  request.path = "/" + std::string(3000, 'a');  // about 8e13 steps if it ran
  ScriptVerdict verdict = script->on_request(request);
  CHECK_FALSE(verdict.allowed);
  CHECK(verdict.reason == reason::policy_script_error);
  CHECK(contains(verdict.message, "string.match: pattern too costly for a 3001-byte subject"));

  request.path = "/a/b/c/x";  // the same pattern over a short path is cheap
  CHECK(script->on_request(request).allowed);
  CHECK(script->counters().errors == 1);
}

TEST_CASE("anchored patterns, plain finds and single-item classes stay within budget") {
  auto script = load(R"lua(
    function on_request(req)
      local v = req.headers["x-big"]
      assert(v:find("needle", 1, true) == #v - 5)
      assert(string.match(v, "^(a+)") ~= nil)
      assert(select(2, v:gsub("%a", "")) == #v)
      for word in v:gmatch("needle") do assert(word == "needle") end
      local runs = 0
      for run in v:gmatch("[^n]+") do runs = runs + 1 end  -- a final item only scans
      assert(runs == 2)
      assert(v:find("%d") == nil)
      return true
    end)lua");
  ScriptRequest request = sample_request();
  request.headers.emplace_back("X-Big", std::string(60000, 'a') + "needle");
  ScriptVerdict verdict = script->on_request(request);
  CHECK_MESSAGE(verdict.allowed, verdict.message);
}

TEST_CASE("pcall can catch a pattern refusal, but the call's pattern budget stays spent") {
  auto script = load(R"lua(
    function on_request(req)
      local ok = pcall(string.match, req.path, "(.-)/(.-)/(.-)/x")
      local ok2 = pcall(string.find, "abc", "b")
      return false, tostring(ok) .. "," .. tostring(ok2)
    end)lua");
  ScriptRequest request = sample_request();
  request.path = "/" + std::string(3000, 'a');
  CHECK(script->on_request(request).message == "false,false");
  request.path = "/a";  // the next request starts with a fresh budget
  CHECK(script->on_request(request).message == "true,true");
}

TEST_CASE("an ended gmatch iterator does not scan again") {
  auto script = load(R"lua(
    function on_request(req)
      local it = req.path:gmatch("a.-b")  -- one pass over the path: priced and allowed
      assert(it() == nil)
      for i = 1, 1000000 do assert(it() == nil) end  -- each a full rescan in plain Lua
      return true
    end)lua");
  ScriptRequest request = sample_request();
  request.path = "/" + std::string(3000, 'a');
  ScriptVerdict verdict = script->on_request(request);
  CHECK_MESSAGE(verdict.allowed, verdict.message);
}

TEST_CASE("a back-reference that ends a pattern is priced like any variable item") {
  auto script = load(R"lua(
    function on_request(req)
      return req.path:find("(.+)%1") == nil
    end)lua");
  ScriptRequest request = sample_request();
  request.path = "/" + std::string(1999, 'a');
  ScriptVerdict verdict = script->on_request(request);
  CHECK(verdict.reason == reason::policy_script_error);
  CHECK(contains(verdict.message, "string.find: pattern too costly for a 2000-byte subject"));
}

TEST_CASE("the pattern budget is a limit of its own") {
  auto script = load(R"lua(
    function on_request(req)
      return string.find(req.path, "x.*y") == nil
    end)lua",
                     {.memory_bytes = 4u << 20, .instructions = 10'000'000, .pattern_cost = 10000});
  ScriptRequest request = sample_request();
  request.path = "/" + std::string(20, 'a');  // 21 bytes: 22 * 22 * 5 = 2420 steps
  CHECK(script->on_request(request).allowed);
  request.path = "/" + std::string(60, 'a');  // 61 bytes: 62 * 62 * 5 = 19220 steps
  ScriptVerdict verdict = script->on_request(request);
  CHECK(verdict.reason == reason::policy_script_error);
  CHECK(contains(verdict.message, "string.find: pattern too costly for a 61-byte subject"));
}

TEST_CASE("an endless top-level chunk fails the load") {
  std::string error =
      load_error("while true do end", {.memory_bytes = 4u << 20, .instructions = 50'000});
  CHECK(contains(error, "instruction limit exceeded"));
}

TEST_CASE("a memory bomb is an error, not a crash, and the state stays usable") {
  PolicyScript::Limits limits{.memory_bytes = 2u << 20, .instructions = 10'000'000};
  SUBCASE("string growth") {
    auto script = load(R"lua(
      function on_request(req)
        if req.path == "/ok" then return false, "fine" end
        local s = "x"
        while true do s = s .. s end
      end)lua",
                       limits);
    ScriptVerdict verdict = script->on_request(sample_request());
    CHECK(verdict.reason == reason::policy_script_error);
    CHECK(contains(verdict.message, "memory limit exceeded"));
    ScriptRequest ok = sample_request();
    ok.path = "/ok";
    CHECK(script->on_request(ok).message == "fine");
  }
  SUBCASE("string.rep far past the limit") {
    auto script = load("function on_request(req) return #string.rep('x', 1 << 30) > 0 end", limits);
    ScriptVerdict verdict = script->on_request(sample_request());
    CHECK(verdict.reason == reason::policy_script_error);
    CHECK(contains(verdict.message, "memory limit exceeded"));
  }
  SUBCASE("table growth kept in a global") {
    auto script = load(R"lua(
      hoard = {}
      function on_request(req)
        for i = 1, 1e9 do hoard[#hoard + 1] = {i} end
      end)lua",
                       limits);
    ScriptVerdict verdict = script->on_request(sample_request());
    CHECK(verdict.reason == reason::policy_script_error);
    CHECK(contains(verdict.message, "memory limit exceeded"));
  }
  SUBCASE("at load time") {
    std::string error = load_error("t = {} for i = 1, 1e9 do t[i] = i end", limits);
    CHECK(starts_with(error, "policy.lua: memory limit exceeded"));
  }
}

TEST_CASE("a memory limit too small for the libraries fails the load") {
  std::string error = load_error("", {.memory_bytes = 1024, .instructions = 1000});
  CHECK(contains(error, "memory"));
}

TEST_CASE("io, os, require, dofile, load and friends are absent") {
  auto script = load(R"lua(
    local names = {}
    for _, name in ipairs({"io", "os", "package", "require", "debug", "dofile", "loadfile",
                           "load", "loadstring", "collectgarbage", "print", "warn",
                           "coroutine"}) do
      if _G[name] ~= nil then names[#names + 1] = name end
    end
    if string.dump ~= nil then names[#names + 1] = "string.dump" end
    present = table.concat(names, ",")
    function on_request(req) return false, "[" .. present .. "]" end)lua");
  CHECK(script->on_request(sample_request()).message == "[]");
}

TEST_CASE("the allowed libraries are there") {
  auto script = load(R"lua(
    function on_request(req)
      local parts = {string.upper("a"), table.concat({"b"}), tostring(math.max(1, 2)),
                     utf8.char(0x43), tostring(select("#", 1, 2))}
      return false, table.concat(parts)
    end)lua");
  CHECK(script->on_request(sample_request()).message == "Ab2C2");
}

TEST_CASE("__gc metatables are refused; others work") {
  std::string error = load_error("setmetatable({}, {__gc = function() end})");
  CHECK(contains(error, "__gc"));
  auto script = load(R"lua(
    local t = setmetatable({}, {__index = function(_, k) return k .. "!" end})
    function on_request(req) return false, t.hi end)lua");
  CHECK(script->on_request(sample_request()).message == "hi!");
}

TEST_CASE("messages are cut to 256 bytes without splitting UTF-8") {
  SUBCASE("the script's message") {
    auto script = load("function on_request(req) return false, string.rep('m', 1000) end");
    ScriptVerdict verdict = script->on_request(sample_request());
    CHECK(verdict.message == std::string(PolicyScript::kMaxMessageBytes, 'm'));
  }
  SUBCASE("an error message") {
    auto script = load("function on_request(req) error(string.rep('e', 1000), 0) end");
    ScriptVerdict verdict = script->on_request(sample_request());
    CHECK(verdict.reason == reason::policy_script_error);
    CHECK(verdict.message == std::string(256, 'e'));
  }
  SUBCASE("a multi-byte character across the cut") {
    // 255 ASCII bytes, then a 2-byte character that would straddle byte 256.
    auto script = load("function on_request(req) return false, string.rep('a', 255) .. 'é' end");
    ScriptVerdict verdict = script->on_request(sample_request());
    CHECK(verdict.message == std::string(255, 'a'));
  }
}

TEST_CASE("a metatable on _G does not intercept the lookup of on_request") {
  auto script = load(R"lua(
    setmetatable(_G, {__index = function() error("should not run") end})
    function on_request(req) return false, "direct" end)lua");
  CHECK(script->has_on_request());
  CHECK(script->on_request(sample_request()).message == "direct");
}

TEST_CASE("the example script denies DELETE and /admin, with messages") {
  auto loaded = PolicyScript::load_file(fs::path(AIRLOCK_EXAMPLES_DIR) / "policy.lua");
  REQUIRE_MESSAGE(loaded.ok(), loaded.error());
  PolicyScript& script = **loaded;

  CHECK(script.on_request(sample_request()).allowed);

  ScriptRequest del = sample_request();
  del.method = "DELETE";
  ScriptVerdict verdict = script.on_request(del);
  CHECK_FALSE(verdict.allowed);
  CHECK(verdict.reason == reason::policy_script);
  CHECK(verdict.message == "DELETE is not allowed (api.example.com/v1/x)");

  for (const char* path : {"/admin", "/admin/", "/admin/users", "/x/../%41dmin//y", "//ADMIN"}) {
    CAPTURE(path);
    ScriptRequest admin = sample_request();
    admin.path = path;
    verdict = script.on_request(admin);
    CHECK_FALSE(verdict.allowed);
    CHECK(verdict.message == "the /admin area is off limits");
  }
  for (const char* path : {"/", "/administrator", "/v1/admin-guide", "/x/admin"}) {
    CAPTURE(path);
    ScriptRequest other = sample_request();
    other.path = path;
    CHECK(script.on_request(other).allowed);
  }
  CHECK(script.counters().errors == 0);
}
