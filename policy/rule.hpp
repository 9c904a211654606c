// Rule: which part of the policy decided, as a value - never as display text parsed back.
//
// Every decision (Evaluator, PolicyEngine, the MITM's judge) names the rule behind it so
// events can say why; later layers read its fields (names_port lets opaque TCP through)
// instead of the words. to_string() is the one spelling events and the CLI print:
// "allowed_hosts: api.example.com:443", "blocked_hosts: *.evil.test",
// "block_private_ips: loopback", "allow_private: 127.0.0.1", "block_private_ips: false",
// "rules: no-push", "rules: [0] github.com".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace airlock::policy {

struct Rule {
  enum class Source : std::uint8_t {
    none,               // nothing matched (host_not_allowed)
    allowed_hosts,
    blocked_hosts,
    block_private_ips,  // text: the address class, or "false" when the guard is off
    allow_private,      // text: the CIDR or host pattern of the exception
    rules,              // text: the rule's name, else "[INDEX] HOST"
  };

  Source source = Source::none;
  std::string text;         // the pattern or class, as the policy spells it
  bool names_port = false;  // lets opaque bytes through: an allowed_hosts pattern or an
                            // unconditional allow rule with an explicit port

  bool empty() const { return source == Source::none; }
  std::string to_string() const;
  bool operator==(const Rule&) const = default;
};

std::string_view to_string(Rule::Source source);

}  // namespace airlock::policy
