// Which allow rules let opaque (non-HTTP) bytes through: only those naming a port.
#include <doctest/doctest.h>

#include "proxy/relay/mitm_flow.hpp"

namespace airlock::relay {
namespace {

TEST_CASE("mitm flow: opaque TCP needs a rule that names the port") {
  CHECK(rule_names_port("allowed_hosts: db.example.com:5432"));
  CHECK(rule_names_port("allowed_hosts: *.example.com:22"));
  CHECK(rule_names_port("allowed_hosts: 10.0.0.0/8:6379"));
  CHECK_FALSE(rule_names_port("allowed_hosts: db.example.com"));
  CHECK_FALSE(rule_names_port("allowed_hosts: *"));
  CHECK_FALSE(rule_names_port("db.example.com:5432"));  // not an allow rule
  CHECK_FALSE(rule_names_port(""));
}

}  // namespace
}  // namespace airlock::relay
