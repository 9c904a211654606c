// Golden JSON for every audit event type: the one serializer's spelling is the contract
// (docs/audit.md and the seed API's field names), so each field's name, order and
// omission rule is pinned here.
#include <doctest/doctest.h>

#include "audit/events.hpp"

using namespace airlock::audit;

namespace {

std::string line(const Event& e) { return to_line(e, 7, 1700000000000, "vm-1"); }

}  // namespace

TEST_CASE("audit: network request") {
  HttpRequest r;
  r.method = "POST";
  r.url = "https://api.test/v1?key=[REDACTED]";
  r.host = "api.test";
  r.port = 443;
  r.http_version = "HTTP/2";
  r.status_code = 200;
  r.request_bytes = 12;
  r.response_bytes = 34;
  r.duration_ms = 5;
  r.rule = "allowed_hosts: api.test";
  r.secrets = {{"API_KEY", "header:authorization"}, {"API_KEY", "response"}};
  CHECK(line(r) ==
        R"({"seq":7,"type":"network","timestamp":1700000000000,"vm_id":"vm-1","network":{"kind":"request",)"
        R"("method":"POST","url":"https://api.test/v1?key=[REDACTED]","host":"api.test","port":443,)"
        R"("http_version":"HTTP/2","status_code":200,"request_bytes":12,"response_bytes":34,"duration_ms":5,)"
        R"("blocked":false,"rule":"allowed_hosts: api.test","secrets":[{"name":"API_KEY","location":)"
        R"("header:authorization"},{"name":"API_KEY","location":"response"}]}})");
  HttpRequest refused;
  refused.method = "GET";
  refused.url = "http://x.test/";
  refused.host = "x.test";
  refused.port = 80;
  refused.status_code = 403;
  refused.blocked = true;
  refused.block_reason = "host_not_allowed";
  refused.detail = "words";
  CHECK(to_json(refused).dump() ==
        R"({"type":"network","network":{"kind":"request","method":"GET","url":"http://x.test/","host":"x.test",)"
        R"("port":80,"status_code":403,"request_bytes":0,"response_bytes":0,"duration_ms":0,"blocked":true,)"
        R"("block_reason":"host_not_allowed","rule":"","detail":"words"}})");
  HttpRequest cut;
  cut.error = "upstream_failed";
  CHECK(to_json(cut)["network"]["error"] == "upstream_failed");
  CHECK_FALSE(to_json(cut)["network"].contains("block_reason"));
}

TEST_CASE("audit: network flow") {
  Flow f;
  f.protocol = "tls";
  f.host = "api.test";
  f.port = 443;
  f.address = "127.0.0.1";
  f.sni = "api.test";
  f.alpn = "h2";
  f.request_bytes = 1;
  f.response_bytes = 2;
  f.duration_ms = 3;
  f.requests = 4;
  f.rule = "allowed_hosts: api.test";
  f.close_reason = "closed";
  CHECK(to_json(f).dump() ==
        R"({"type":"network","network":{"kind":"flow","protocol":"tls","host":"api.test","port":443,)"
        R"("address":"127.0.0.1","sni":"api.test","alpn":"h2","request_bytes":1,"response_bytes":2,)"
        R"("duration_ms":3,"requests":4,"blocked":false,"rule":"allowed_hosts: api.test","close_reason":"closed"}})");
  Flow refused;
  refused.host = "10.0.0.1";
  refused.port = 80;
  refused.blocked = true;
  refused.block_reason = "private_address";
  refused.close_reason = "refused";
  refused.error = "";
  CHECK(to_json(refused).dump() ==
        R"({"type":"network","network":{"kind":"flow","protocol":"","host":"10.0.0.1","port":80,)"
        R"("request_bytes":0,"response_bytes":0,"duration_ms":0,"blocked":true,"block_reason":"private_address",)"
        R"("rule":"","close_reason":"refused"}})");
}

TEST_CASE("audit: dns, exec, file, lifecycle, events_lost") {
  DnsQuery q{"api.test", "A", "NOERROR", "198.18.0.1", false, "", "allowed_hosts: api.test"};
  CHECK(to_json(q).dump() ==
        R"({"type":"dns","dns":{"name":"api.test","qtype":"A","rcode":"NOERROR","answer":"198.18.0.1",)"
        R"("blocked":false,"rule":"allowed_hosts: api.test"}})");
  Exec x{"echo hi", 0, 12, ""};
  CHECK(to_json(x).dump() == R"({"type":"exec","exec":{"command":"echo hi","exit_code":0,"duration_ms":12}})");
  File file{"rename", "/workspace/b", 5, "/workspace/a"};
  CHECK(to_json(file).dump() ==
        R"({"type":"file","file":{"op":"rename","path":"/workspace/b","size":5,"from":"/workspace/a"}})");
  Lifecycle booted{"booted", {{"boot_ms", 2100}, {"event", "ignored"}}};
  CHECK(to_json(booted).dump() == R"({"type":"lifecycle","lifecycle":{"event":"booted","boot_ms":2100}})");
  EventsLost lost{3, "dns", "queue_full"};
  CHECK(line(lost) ==
        R"({"seq":7,"type":"events_lost","timestamp":1700000000000,"vm_id":"vm-1","events_lost":{"count":3,)"
        R"("kind":"dns","reason":"queue_full"}})");
}

TEST_CASE("audit: invalid UTF-8 from a guest can't break the line") {
  File f{"create", std::string("/workspace/\xff\xfe"), std::nullopt, ""};
  const std::string text = line(f);
  CHECK(text.find("\xff") == std::string::npos);
  CHECK(text.find("/workspace/") != std::string::npos);
}
