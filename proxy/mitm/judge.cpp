// The per-request decision; see judge.hpp for the order of judgement.
#include "proxy/mitm/judge.hpp"

#include <algorithm>
#include <cctype>

#include "policy/url.hpp"
#include "proxy/http/url_redact.hpp"

namespace airlock::mitm {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Verdict refuse(Verdict v, std::string_view why, std::string detail = {}) {
  v.allowed = false;
  v.reason = std::string(why);
  v.detail = std::move(detail);
  v.swaps.clear();
  return v;
}

// Splits an origin-form target into path and query (without '?'); drops a fragment.
std::pair<std::string, std::string> split_target(std::string_view target) {
  if (auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  auto q = target.find('?');
  if (q == std::string_view::npos) return {std::string(target), ""};
  return {std::string(target.substr(0, q)), std::string(target.substr(q + 1))};
}

}  // namespace

std::string event_url(bool tls, const std::string& host, std::uint16_t port,
                      std::string_view target) {
  std::string url = tls ? "https://" : "http://";
  const bool v6 = host.find(':') != std::string::npos;
  url += v6 ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) url += ":" + std::to_string(port);
  if (target.empty() || target.front() != '/') {
    url += "/";
    if (target != "*") return url;
  }
  url += http::redact_query_values(target);
  return url;
}

Verdict RequestJudge::judge(const FlowTarget& flow, http::RequestHead& head,
                            const policy::MatchSet* secrets) const {
  Verdict v = decide(flow, head, secrets);
  if (const auto& values = policy_.secrets().response_matches()) {
    for (std::string* text : {&v.host, &v.url, &v.detail}) {
      // A real value becomes its placeholder; a form that has none hides the whole text.
      if (policy::rewrite_string(*values, *text).stopped) *text = std::string(policy::SecretValue::kRedacted);
    }
  }
  return v;
}

Verdict RequestJudge::decide(const FlowTarget& flow, http::RequestHead& head,
                             const policy::MatchSet* secrets) const {
  Verdict v;
  v.host = flow.host.to_string();
  v.rule = flow.rule.to_string();
  v.url = event_url(flow.tls, v.host, flow.port,
                    !head.target.empty() && head.target.front() == '/' ? head.target : "/");

  if (head.method == "CONNECT")
    return refuse(v, reason::unsupported_method, "CONNECT inside an intercepted flow");
  if (head.method == "TRACE")  // echoes the request, swapped secrets included
    return refuse(v, reason::unsupported_method, "TRACE");
  if (const http::Header* upgrade = http::find_header(head.headers, "upgrade")) {
    if (http::iequals(upgrade->value, "h2c") || http::find_header(head.headers, "http2-settings") != nullptr)
      return refuse(v, reason::h2c_refused, "HTTP/2 over cleartext is not proxied");
    if (head.upgrade && !http::iequals(upgrade->value, "websocket"))
      return refuse(v, reason::unsupported_upgrade, "only WebSocket upgrades are proxied");
  }

  // 1. The request's own idea of its host: the absolute-form target, else Host.
  std::optional<policy::Host> host;
  std::uint16_t port = flow.port;
  std::string origin_target = head.target;
  if (!head.target.empty() && head.target.front() != '/' && head.target != "*") {
    auto url = policy::parse_url(head.target);
    if (!url || (url->scheme != "http" && url->scheme != "https"))
      return refuse(v, reason::bad_request, "unsupported request target");
    if ((url->scheme == "https") != flow.tls)
      return refuse(v, reason::host_mismatch, "the target's scheme does not match the flow");
    host = url->host;
    port = url->port;
    origin_target = url->path.empty() ? "/" : url->path;
  }
  if (const http::Header* h = http::find_header(head.headers, "host")) {
    auto authority = policy::parse_authority(h->value, flow.port);
    if (!authority) return refuse(v, reason::bad_request, "bad Host header: " + authority.error());
    if (host && (*host != authority->first || authority->second != port))
      return refuse(v, reason::host_mismatch, "the Host header differs from the target");
    if (!host) {
      host = authority->first;
      port = authority->second;
    }
  }
  if (!host) {
    // HTTP/1.0 without Host: the flow's name stands in.
    host = flow.host;
  }
  v.host = host->to_string();
  v.url = event_url(flow.tls, v.host, port, origin_target);

  // 5 (scan first): a secret bound for a host it doesn't belong to is a leak, whatever
  // else is wrong with the request.
  std::string target_swapped = origin_target;
  std::vector<std::string> values;
  values.reserve(head.headers.size());
  auto leak = [&](const policy::Finding& f, std::string_view where) {
    return refuse(v, reason::secret_leak,
                  "secret " + f.secret + (f.form == "placeholder" ? "" : " (its real value)") +
                      std::string(where));
  };
  if (secrets != nullptr && !secrets->empty()) {
    auto scan = policy::rewrite_string(*secrets, target_swapped);
    if (scan.stopped) return leak(*scan.stopped, " in the URL");
    for (const auto& name : scan.replaced) v.swaps.push_back({name, "url"});
  }
  for (const auto& header : head.headers) {
    std::string value = header.value;
    if (secrets != nullptr && !secrets->empty()) {
      std::string name = header.name;  // a secret as a header name goes nowhere
      auto in_name = policy::rewrite_string(*secrets, name);
      if (in_name.stopped) return leak(*in_name.stopped, " in a header name");
      if (!in_name.replaced.empty())
        return refuse(v, reason::secret_leak, "secret " + in_name.replaced.front() + " in a header name");
      auto scan = policy::rewrite_string(*secrets, value);
      if (scan.stopped) return leak(*scan.stopped, "");
      for (const auto& n : scan.replaced) v.swaps.push_back({n, "header:" + lower(header.name)});
    }
    values.push_back(std::move(value));
  }

  // 2. Agreement with the flow.
  const policy::Host& expected = flow.tls && flow.sni ? *flow.sni : flow.host;
  if (*host != expected || port != flow.port) {
    const std::string detail = "request for " + v.host + ":" + std::to_string(port) +
                               " on a flow to " + expected.to_string() + ":" +
                               std::to_string(flow.port);
    return refuse(v, flow.tls ? reason::sni_host_mismatch : reason::host_mismatch, detail);
  }

  // 3. Blocklist, rules (with this request's method and path) and allowlist.
  policy::Decision decision = policy_.evaluator().evaluate_request(*host, port, head.method, origin_target);
  if (!decision.allowed) {
    v.rule = decision.rule.to_string();
    return refuse(v, decision.reason, decision.detail);
  }
  v.rule = decision.rule.to_string();

  // 4. The policy script.
  policy::PolicyScript* script = policy_.script();
  if (script != nullptr && script->has_on_request()) {
    policy::ScriptRequest request;
    request.method = head.method;
    request.scheme = flow.tls ? "https" : "http";
    request.host = v.host;
    request.port = port;
    std::tie(request.path, request.query) = split_target(origin_target);
    for (const auto& header : head.headers) request.headers.emplace_back(lower(header.name), header.value);
    policy::ScriptVerdict sv = script->on_request(request);
    if (!sv.allowed) return refuse(v, sv.reason, sv.message);
  }

  // Allowed: the head goes upstream in origin form with the swapped values.
  head.target = std::move(target_swapped);
  for (std::size_t i = 0; i < head.headers.size(); ++i) head.headers[i].value = std::move(values[i]);
  v.allowed = true;
  v.reason = std::string(policy::reason::allowed);
  return v;
}

}  // namespace airlock::mitm
