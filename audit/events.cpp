// The one serializer of audit events; see events.hpp.
#include "audit/events.hpp"

namespace airlock::audit {

namespace {

using Json = nlohmann::ordered_json;

void put_if(Json& j, const char* key, const std::string& value) {
  if (!value.empty()) j[key] = value;
}

Json secrets_json(const std::vector<SecretUse>& secrets) {
  Json out = Json::array();
  for (const auto& s : secrets) out.push_back(Json{{"name", s.name}, {"location", s.location}});
  return out;
}

Json body(const HttpRequest& e) {
  Json j;
  j["kind"] = "request";
  j["method"] = e.method;
  j["url"] = e.url;
  j["host"] = e.host;
  j["port"] = e.port;
  put_if(j, "http_version", e.http_version);
  j["status_code"] = e.status_code;
  j["request_bytes"] = e.request_bytes;
  j["response_bytes"] = e.response_bytes;
  j["duration_ms"] = e.duration_ms;
  j["blocked"] = e.blocked;
  put_if(j, "block_reason", e.block_reason);
  put_if(j, "error", e.error);
  j["rule"] = e.rule;
  put_if(j, "detail", e.detail);
  if (!e.secrets.empty()) j["secrets"] = secrets_json(e.secrets);
  return j;
}

Json body(const Flow& e) {
  Json j;
  j["kind"] = "flow";
  j["protocol"] = e.protocol;
  j["host"] = e.host;
  j["port"] = e.port;
  put_if(j, "address", e.address);
  put_if(j, "sni", e.sni);
  put_if(j, "alpn", e.alpn);
  j["request_bytes"] = e.request_bytes;
  j["response_bytes"] = e.response_bytes;
  j["duration_ms"] = e.duration_ms;
  if (e.requests > 0) j["requests"] = e.requests;
  j["blocked"] = e.blocked;
  put_if(j, "block_reason", e.block_reason);
  put_if(j, "error", e.error);
  j["rule"] = e.rule;
  put_if(j, "detail", e.detail);
  j["close_reason"] = e.close_reason;
  return j;
}

Json body(const DnsQuery& e) {
  Json j;
  j["name"] = e.name;
  j["qtype"] = e.qtype;
  j["rcode"] = e.rcode;
  put_if(j, "answer", e.answer);
  j["blocked"] = e.blocked;
  put_if(j, "block_reason", e.block_reason);
  put_if(j, "rule", e.rule);
  return j;
}

Json body(const Exec& e) {
  Json j;
  j["command"] = e.command;
  j["exit_code"] = e.exit_code;
  j["duration_ms"] = e.duration_ms;
  put_if(j, "error", e.error);
  return j;
}

Json body(const File& e) {
  Json j;
  j["op"] = e.op;
  j["path"] = e.path;
  if (e.size) j["size"] = *e.size;
  put_if(j, "from", e.from);
  return j;
}

Json body(const Lifecycle& e) {
  Json j;
  j["event"] = e.event;
  if (e.fields.is_object())
    for (auto it = e.fields.begin(); it != e.fields.end(); ++it)
      if (it.key() != "event") j[it.key()] = it.value();
  return j;
}

Json body(const EventsLost& e) {
  Json j;
  j["count"] = e.count;
  j["kind"] = e.kind;
  put_if(j, "reason", e.reason);
  return j;
}

struct TypeName {
  std::string_view operator()(const HttpRequest&) const { return "network"; }
  std::string_view operator()(const Flow&) const { return "network"; }
  std::string_view operator()(const DnsQuery&) const { return "dns"; }
  std::string_view operator()(const Exec&) const { return "exec"; }
  std::string_view operator()(const File&) const { return "file"; }
  std::string_view operator()(const Lifecycle&) const { return "lifecycle"; }
  std::string_view operator()(const EventsLost&) const { return "events_lost"; }
};

}  // namespace

std::string_view type_of(const Event& event) { return std::visit(TypeName{}, event); }

nlohmann::ordered_json to_json(const Event& event) {
  const std::string type(type_of(event));
  Json j;
  j["type"] = type;
  j[type] = std::visit([](const auto& e) { return body(e); }, event);
  return j;
}

std::string to_line(const Event& event, std::uint64_t seq, std::int64_t timestamp_ms,
                    std::string_view vm_id) {
  const std::string type(type_of(event));
  Json line;
  line["seq"] = seq;
  line["type"] = type;
  line["timestamp"] = timestamp_ms;
  line["vm_id"] = std::string(vm_id);
  line[type] = std::visit([](const auto& e) { return body(e); }, event);
  // Replacement of invalid UTF-8 (a guest file name, a header) keeps the line valid JSON.
  return line.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace airlock::audit
