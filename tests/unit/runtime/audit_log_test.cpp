// events.jsonl: line shape and gap-free numbering across reopenings and torn lines.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <fstream>
#include <sstream>

#include "runtime/vm/audit_log.hpp"

using namespace airlock::runtime;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<nlohmann::json> lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

}  // namespace

TEST_CASE("audit line: seq, type, timestamp, vm_id, then the body") {
  const std::string line = make_audit_line(
      7, 1700000000123, "vm-0000abcd", {{"type", "exec"}, {"exec", {{"command", "ls"}, {"exit_code", 0}}}});
  CHECK(line == R"({"seq":7,"type":"exec","timestamp":1700000000123,"vm_id":"vm-0000abcd",)"
                R"("exec":{"command":"ls","exit_code":0}})");
  // A body can't override the envelope.
  auto j = nlohmann::json::parse(make_audit_line(1, 2, "vm-1", {{"type", "file"}, {"seq", 99}}));
  CHECK(j["seq"] == 1);
}

TEST_CASE("audit line: invalid UTF-8 from a guest path still gives valid JSON") {
  nlohmann::json body = {{"type", "file"}, {"file", {{"op", "create"}, {"path", std::string("/w/\xff")}}}};
  const std::string line = make_audit_line(1, 0, "vm-1", body);
  CHECK_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded());
}

TEST_CASE("last_audit_seq ignores torn and foreign lines") {
  CHECK(last_audit_seq("") == 0);
  CHECK(last_audit_seq("{\"seq\":1}\n{\"seq\":2}\n") == 2);
  CHECK(last_audit_seq("{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3,\"ty") == 2);
  CHECK(last_audit_seq("garbage\n{\"seq\":\"5\"}\n{\"seq\":4}") == 4);
}

TEST_CASE("AuditLog: flushes each line, continues numbering after reopen and torn line") {
  char tmpl[] = "/tmp/airlock-audit-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::filesystem::path file = std::filesystem::path(tmpl) / "events.jsonl";
  {
    AuditLog log;
    REQUIRE(log.open(file, "vm-0000abcd"));
    CHECK_FALSE(log.lifecycle("created", {{"image", "default"}}, 10).empty());
    CHECK_FALSE(log.append({{"type", "exec"}, {"exec", {{"command", "true"}}}}, 11).empty());
    // Visible to readers before close: each line is flushed.
    auto now = lines(slurp(file));
    REQUIRE(now.size() == 2);
    CHECK(now[0]["lifecycle"]["event"] == "created");
    CHECK(now[0]["lifecycle"]["image"] == "default");
    CHECK(now[1]["seq"] == 2);
  }
  { std::ofstream(file, std::ios::app) << R"({"seq":3,"type":"fi)"; }  // crash mid-write
  {
    AuditLog log;
    REQUIRE(log.open(file, "vm-0000abcd"));
    CHECK(log.last_seq() == 2);
    log.lifecycle("stopped", nullptr, 12);
  }
  auto all = lines(slurp(file));
  REQUIRE(all.size() == 3);
  CHECK(all[2]["seq"] == 3);
  CHECK(all[2]["lifecycle"]["event"] == "stopped");
  CHECK(all[2]["vm_id"] == "vm-0000abcd");
  std::filesystem::remove_all(tmpl);
}
