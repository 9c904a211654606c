// Supervisor-side requests; see host_ops.hpp.
#include "runtime/vm/host_ops.hpp"

#include "protocol/messages.hpp"

namespace airlock::runtime {

bool is_host_op(const std::string& op) { return op == "status" || op == "stop" || op == "events"; }

std::variant<HostOp, std::string> parse_host_op(const nlohmann::json& request) {
  const std::string op = protocol::op_of(request);
  if (op == "status") return HostOp{StatusOp{}};
  if (op == "stop") return HostOp{StopOp{}};
  if (op != "events") return "unknown op '" + op + "'";
  EventsOp events;
  if (auto it = request.find("from_seq"); it != request.end() && !it->is_null()) {
    const auto seq = protocol::get_int(request, "from_seq");
    if (!seq || *seq < 0) return std::string("from_seq must be a non-negative integer");
    events.from_seq = static_cast<std::uint64_t>(*seq);
  }
  if (auto it = request.find("follow"); it != request.end() && !it->is_null()) {
    if (!it->is_boolean()) return std::string("follow must be true or false");
    events.follow = it->get<bool>();
  }
  return HostOp{events};
}

}  // namespace airlock::runtime
