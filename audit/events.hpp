// The audit trail's event types: one plain struct per event type, one serializer.
//
// Every record on the audit stream is one of these, turned into JSON by to_json() alone,
// so a field's name and spelling are decided in one place (and pinned by golden tests).
// The line around it ({"seq","type","timestamp","vm_id", <type>: {...}}) is added by the
// writer that numbers the records. Field names are those docs/audit.md documents; dns,
// lifecycle and events_lost are airlock's own types.
//
// No real secret value may ever be put in a field: secrets appear by name only
// (SecretUse), URLs carry query values as [REDACTED]. Strings from a guest or an upstream
// are bounded by their producers; the serializer replaces invalid UTF-8 when it writes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace airlock::audit {

// A secret swapped into a request (or scrubbed out of a response): its name and where.
struct SecretUse {
  std::string name;      // the secret's name, never its value
  std::string location;  // "url", "header:<name>", "body", "response"
  bool operator==(const SecretUse&) const = default;
};

// network, kind "request": one per HTTP request the guest sent, answered or not.
struct HttpRequest {
  std::string method;
  std::string url;                 // scheme://host[:port]/path?name=[REDACTED]
  std::string host;
  std::uint16_t port = 0;
  std::string http_version;        // "HTTP/1.1", "HTTP/2"
  int status_code = 0;             // 0 when no response reached the guest
  std::uint64_t request_bytes = 0;   // body bytes from the guest
  std::uint64_t response_bytes = 0;  // body bytes to the guest
  std::int64_t duration_ms = 0;
  bool blocked = false;
  std::string block_reason;        // a stable code when the policy refused or cut it
  std::string error;               // a stable code when it was cut short otherwise
                                   // (upstream_failed, connect_failed, guest_closed, ...)
  std::string rule;                // the rule that decided
  std::string detail;              // human words, when there are any
  std::vector<SecretUse> secrets;
  bool operator==(const HttpRequest&) const = default;
};

// network, kind "flow": exactly one per guest connection (or explicit-proxy client
// connection), when it ends, saying how it ended.
struct Flow {
  std::string protocol;            // tcp, tls, http, opaque, dns, proxy, ...
  std::string host;                // the name the guest resolved, or the literal IP
  std::uint16_t port = 0;
  std::string address;             // the upstream address connected to, if any
  std::string sni;                 // the guest's ClientHello server name, if any
  std::string alpn;                // negotiated with the guest, if any
  std::uint64_t request_bytes = 0;   // guest -> upstream payload
  std::uint64_t response_bytes = 0;  // upstream -> guest payload
  std::int64_t duration_ms = 0;
  bool blocked = false;
  std::string block_reason;        // the policy refused it
  std::string error;               // it failed otherwise (connect_failed, guest_tls_failed...)
  std::string rule;
  std::string detail;
  std::string close_reason;        // closed, reset_by_guest, reset_by_upstream, refused, ...
  std::uint64_t requests = 0;      // HTTP requests seen on it
  bool operator==(const Flow&) const = default;
};

// dns: one per answer given to the guest (UDP or TCP).
struct DnsQuery {
  std::string name;
  std::string qtype;
  std::string rcode;
  std::string answer;              // the synthetic address, if any
  bool blocked = false;
  std::string block_reason;
  std::string rule;
  bool operator==(const DnsQuery&) const = default;
};

// exec: one per command run in the guest, when it ends.
struct Exec {
  std::string command;
  std::int64_t exit_code = -1;
  std::int64_t duration_ms = 0;
  std::string error;               // set when the command could not run or was cut off
  bool operator==(const Exec&) const = default;
};

// file: a change in the guest's workspace, or a host file operation.
struct File {
  std::string op;                  // create, write, remove, rename, mkdir, copy_in, ...
  std::string path;
  std::optional<std::uint64_t> size;
  std::string from;                // rename: the old path
  bool operator==(const File&) const = default;
};

// lifecycle: the VM's own story (created, booted, stopped, removed, network_stopped, ...).
// `fields` holds the event's own values (boot_ms, image, counters...), written after
// "event" in key order.
struct Lifecycle {
  std::string event;
  nlohmann::json fields = nlohmann::json::object();
  bool operator==(const Lifecycle&) const = default;
};

// events_lost: records a bounded queue had to drop, with their own seq, so a reader
// always sees that something is missing and what kind it was.
struct EventsLost {
  std::uint64_t count = 0;
  std::string kind;                // the type of the records lost: dns, network, ...
  std::string reason;              // queue_full, ...
  bool operator==(const EventsLost&) const = default;
};

using Event = std::variant<HttpRequest, Flow, DnsQuery, Exec, File, Lifecycle, EventsLost>;

// The record's "type": network, dns, exec, file, lifecycle or events_lost.
std::string_view type_of(const Event& event);

// {"type": T, T: {...}}, fields in a fixed order; empty optional strings are left out.
nlohmann::ordered_json to_json(const Event& event);

// The whole line without its newline: {"seq","type","timestamp","vm_id", T: {...}}.
std::string to_line(const Event& event, std::uint64_t seq, std::int64_t timestamp_ms,
                    std::string_view vm_id);

}  // namespace airlock::audit
