// The supervisor's own requests: every field checked, a wrong type is an error reply.
#include <doctest/doctest.h>

#include "runtime/vm/host_ops.hpp"

using namespace airlock::runtime;

namespace {
std::string refusal(const nlohmann::json& request) {
  auto parsed = parse_host_op(request);
  return std::holds_alternative<std::string>(parsed) ? std::get<std::string>(parsed) : std::string();
}
}  // namespace

TEST_CASE("host ops: status, stop and events are parsed") {
  CHECK(std::holds_alternative<StatusOp>(std::get<HostOp>(parse_host_op(nlohmann::json::parse(R"({"op":"status"})")))));
  CHECK(std::holds_alternative<StopOp>(std::get<HostOp>(parse_host_op(nlohmann::json::parse(R"({"op":"stop"})")))));
  auto events = std::get<EventsOp>(std::get<HostOp>(parse_host_op({{"op", "events"}, {"from_seq", 7}, {"follow", true}})));
  CHECK(events.from_seq == 7);
  CHECK(events.follow);
  auto defaults = std::get<EventsOp>(std::get<HostOp>(parse_host_op({{"op", "events"}, {"follow", nullptr}})));
  CHECK(defaults.from_seq == 0);
  CHECK_FALSE(defaults.follow);
}

TEST_CASE("host ops: a non-boolean follow or a bad from_seq is refused, never thrown") {
  CHECK(refusal({{"op", "events"}, {"follow", "yes"}}).find("follow") != std::string::npos);
  CHECK(refusal({{"op", "events"}, {"follow", 1}}).find("follow") != std::string::npos);
  CHECK(refusal({{"op", "events"}, {"from_seq", -1}}).find("from_seq") != std::string::npos);
  CHECK(refusal({{"op", "events"}, {"from_seq", 1.5}}).find("from_seq") != std::string::npos);
  CHECK(refusal({{"op", "events"}, {"from_seq", "3"}}).find("from_seq") != std::string::npos);
  CHECK(refusal({{"op", "events"}, {"from_seq", {1, 2}}}).find("from_seq") != std::string::npos);
  CHECK(is_host_op("events"));
  CHECK_FALSE(is_host_op("exec"));
}
