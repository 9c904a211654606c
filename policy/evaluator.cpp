// Network decisions for one destination; see evaluator.hpp for the order of rules.
#include "policy/evaluator.hpp"

#include <algorithm>
#include <cctype>

#include "policy/http_path.hpp"

namespace airlock::policy {

namespace {

Rule rule_of(const std::vector<NetworkRule>& rules, std::size_t index) {
  const NetworkRule& r = rules[index];
  return Rule{Rule::Source::rules,
              r.name.empty() ? "[" + std::to_string(index) + "] " + r.host.to_string() : r.name};
}

// Methods are case-sensitive in HTTP, but an origin that reads "post" as POST must not
// let it past a rule on POST.
bool method_matches(const NetworkRule& rule, std::string_view method) {
  if (rule.methods.empty()) return true;
  auto same = [&](const std::string& m) {
    return m.size() == method.size() &&
           std::equal(m.begin(), m.end(), method.begin(), [](char a, char b) {
             return std::toupper(static_cast<unsigned char>(a)) == std::toupper(static_cast<unsigned char>(b));
           });
  };
  return std::any_of(rule.methods.begin(), rule.methods.end(), same);
}

}  // namespace

bool NetworkRule::covers(const Host& h, std::uint16_t port) const {
  if (!host.matches(h, port)) return false;
  return ports.empty() || std::binary_search(ports.begin(), ports.end(), port);
}

std::string_view to_string(NetworkRule::Action action) {
  switch (action) {
    case NetworkRule::Action::allow: return "allow";
    case NetworkRule::Action::deny: return "deny";
    case NetworkRule::Action::ask: return "ask";
  }
  return "";
}

Evaluator::Evaluator(const NetworkPolicy& network)
    : rules_(network.rules),
      allowed_(network.allowed_hosts),
      blocked_(network.blocked_hosts),
      private_hosts_(network.allow_private_hosts),
      guard_(network.block_private_ips, network.allow_private_cidrs),
      block_private_(network.block_private_ips) {}

Decision Evaluator::decide(const Host& host, std::uint16_t port, const Request* request) const {
  if (const HostPattern* rule = blocked_.find(host, port))
    return Decision{false, reason::blocked_host, Rule{Rule::Source::blocked_hosts, rule->to_string()}, {}, {}, {}};
  if (host.is_ip()) {
    // A literal IP is judged by the guard first: "private" says more than "not listed".
    Decision guard = check_address(host, host.ip());
    if (!guard.allowed) return guard;
  }
  auto allow = [](Rule rule) { return Decision{true, reason::allowed, std::move(rule), {}, {}, {}}; };
  auto deny = [](Rule rule) { return Decision{false, reason::denied_by_rule, std::move(rule), {}, {}, {}}; };
  // Set once a rule passed over might have refused the request (admission only).
  bool passed_conditional = false;
  std::optional<std::string> normal_path;  // the request's, computed on first need
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const NetworkRule& r = rules_[i];
    if (!r.covers(host, port)) continue;
    if (request == nullptr && r.http_only()) {
      if (r.action == NetworkRule::Action::deny) {
        passed_conditional = true;
        continue;
      }
      return allow(rule_of(rules_, i));  // HTTP only: names_port stays false
    }
    if (request != nullptr) {
      if (!method_matches(r, request->method)) continue;
      if (!r.paths.empty()) {
        if (!normal_path) {
          auto normal = normalize_path(request->target);
          if (!normal) {
            Decision d{false, reason::unsafe_path, rule_of(rules_, i), {}, {}, {}};
            d.detail = normal.error();
            return d;
          }
          normal_path = std::move(*normal);
        }
        if (std::none_of(r.paths.begin(), r.paths.end(),
                         [&](const std::string& glob) { return path_glob_matches(glob, *normal_path); }))
          continue;
      }
    }
    // `ask` can't be answered without an approver: it fails closed.
    if (r.action != NetworkRule::Action::allow) return deny(rule_of(rules_, i));
    Rule rule = rule_of(rules_, i);
    rule.names_port = !passed_conditional && !r.http_only() && r.names_port();
    return allow(std::move(rule));
  }
  const HostPattern* pattern = allowed_.find(host, port);
  if (pattern == nullptr) return Decision{false, reason::host_not_allowed, {}, {}, {}, {}};
  return allow(Rule{Rule::Source::allowed_hosts, pattern->to_string(),
                    !passed_conditional && pattern->port().has_value()});
}

Decision Evaluator::evaluate_request(const Host& host, std::uint16_t port, std::string_view method,
                                     std::string_view target, const std::optional<IpAddress>& resolved) const {
  Request request{method, target};
  return with_guard(decide(host, port, &request), host, resolved);
}

Decision Evaluator::evaluate(const Host& host, std::uint16_t port,
                             const std::optional<IpAddress>& resolved) const {
  return with_guard(decide(host, port, nullptr), host, resolved);
}

Decision Evaluator::with_guard(Decision decision, const Host& host, const std::optional<IpAddress>& resolved) const {
  if (!decision.allowed) return decision;
  std::optional<IpAddress> address = host.is_ip() ? std::optional(host.ip()) : resolved;
  if (address) {
    Decision guard = check_address(host, *address);
    if (!guard.allowed) return guard;
    decision.address = guard.address;
    decision.verdict = guard.verdict;
  }
  return decision;
}

Decision Evaluator::check_address(const Host& host, const IpAddress& address) const {
  IpVerdict verdict = guard_.check(address);
  Decision decision{true, reason::allowed, {}, address, verdict, {}};
  if (verdict.is_public()) return decision;
  if (!block_private_) {
    decision.rule = Rule{Rule::Source::block_private_ips, "false"};
    return decision;
  }
  if (verdict.exception) {
    decision.rule = Rule{Rule::Source::allow_private, address.to_string()};
    return decision;
  }
  if (!host.is_ip()) {
    if (const HostPattern* rule = private_hosts_.find(host, std::nullopt)) {
      decision.rule = Rule{Rule::Source::allow_private, rule->to_string()};
      return decision;
    }
  }
  decision.allowed = false;
  decision.reason = reason::private_address;
  decision.rule = Rule{Rule::Source::block_private_ips, std::string(to_string(verdict.address_class))};
  return decision;
}

}  // namespace airlock::policy
