// The requests an API client sends to the supervisor itself rather than to the guest:
// status, stop and events. Parsed and checked here, field by field, before anything
// acts on them: a wrong type ("follow": "yes") is an error reply, never an exception in
// the supervisor's loop (which would take the VM down with it). Pure.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

namespace airlock::runtime {

struct StatusOp {};
struct StopOp {};
struct EventsOp {
  std::uint64_t from_seq = 0;  // 0 = from the first event
  bool follow = false;         // keep streaming new events until the VM stops
};
using HostOp = std::variant<StatusOp, StopOp, EventsOp>;

// The op names handled by the supervisor (the router hands them over).
bool is_host_op(const std::string& op);

// The request, or the message of an "invalid" error reply.
std::variant<HostOp, std::string> parse_host_op(const nlohmann::json& request);

}  // namespace airlock::runtime
