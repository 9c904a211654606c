// The gateway's DNS answers; see dns_handler.hpp for what is answered how.
#include "proxy/dns/dns_handler.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "policy/host_pattern.hpp"
#include "policy/ip_address.hpp"

namespace airlock::dns {

namespace {

constexpr std::size_t kMaxEventName = 255;

std::string rcode_name(std::uint16_t code) {
  switch (code) {
    case rcode::noerror: return "NOERROR";
    case rcode::formerr: return "FORMERR";
    case rcode::servfail: return "SERVFAIL";
    case rcode::nxdomain: return "NXDOMAIN";
    case rcode::notimp: return "NOTIMP";
    case rcode::refused: return "REFUSED";
    case rcode::badvers: return "BADVERS";
    default: return "RCODE" + std::to_string(code);
  }
}

// Guest bytes made safe for an event or a log line: printable ASCII, the rest as '?'.
std::string printable(std::string_view text) {
  std::string out(text.substr(0, kMaxEventName));
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) c = '?';
  }
  return out;
}

bool is_zone_transfer_or_mail(std::uint16_t type) {
  return type == rrtype::axfr || type == rrtype::ixfr || type == 253 || type == 254;
}

}  // namespace

DnsHandler::DnsHandler(Config config, const policy::Evaluator& evaluator,
                       const policy::NetworkPolicy& network, SyntheticPool& pool)
    : config_(config), names_(evaluator, network), pool_(pool) {}

std::optional<std::vector<std::uint8_t>> DnsHandler::answer(std::span<const std::uint8_t> query,
                                                            Clock::time_point now,
                                                            Transport transport) {
  ++counters_.queries;
  if (query.size() > kMaxMessage) {
    ++counters_.dropped_oversize;
    return std::nullopt;
  }
  auto header = Header::parse(query);
  if (!header) {
    ++counters_.dropped_short;
    return std::nullopt;
  }
  if (header->qr()) {
    ++counters_.dropped_response;
    return std::nullopt;
  }

  ResponseSpec spec;
  spec.id = header->id;
  spec.opcode = header->opcode();
  spec.rd = header->rd();
  spec.limit = transport == Transport::tcp ? kMaxMessage : kMaxUdpPlain;
  DnsEvent event;
  event.blocked = true;

  if (header->opcode() != kOpcodeQuery) {
    spec.rcode = rcode::notimp;
    event.reason = dns_reason::unsupported_opcode;
    return finish(spec, std::move(event));
  }
  auto parsed = Query::parse(query);
  if (!parsed) {
    spec.rcode = rcode::formerr;
    event.reason = dns_reason::malformed;
    return finish(spec, std::move(event));
  }

  const Question& question = parsed->question;
  spec.question = &question;
  spec.edns = parsed->edns.has_value();
  if (transport == Transport::udp) spec.limit = parsed->udp_limit();
  event.qtype = rrtype_name(question.type);
  std::optional<std::string> text = question.name.text();
  event.name = printable(text.value_or(""));

  auto refuse = [&](std::string_view reason) {
    spec.rcode = rcode::refused;
    event.reason = reason;
    return finish(spec, std::move(event));
  };
  if (parsed->edns && parsed->edns->version != 0) {
    spec.rcode = rcode::badvers;
    event.reason = dns_reason::bad_edns_version;
    return finish(spec, std::move(event));
  }
  if (question.klass != kClassIn) return refuse(dns_reason::unsupported_class);
  if (is_zone_transfer_or_mail(question.type)) return refuse(dns_reason::unsupported_type);
  if (!text) return refuse(dns_reason::invalid_name);
  if (policy::IpAddress::parse_host_literal(*text)) return refuse(dns_reason::ip_literal);
  if (question.type == rrtype::ptr) return refuse(dns_reason::ptr_query);
  std::optional<std::string> canonical = policy::canonical_host_name(*text);
  if (!canonical) return refuse(dns_reason::invalid_name);
  event.name = *canonical;

  policy::Decision decision = names_.judge(*canonical);
  event.rule = decision.rule.to_string();
  if (!decision.allowed) {
    spec.rcode = config_.refuse_with == RefuseWith::nxdomain ? rcode::nxdomain : rcode::refused;
    event.reason = decision.reason;
    return finish(spec, std::move(event));
  }
  event.reason = dns_reason::allowed;
  if (question.type == rrtype::a) {
    auto address = pool_.assign(*canonical, now);
    if (!address) {
      spec.rcode = rcode::servfail;
      event.reason = dns_reason::pool_exhausted;
      return finish(spec, std::move(event));
    }
    const auto& bytes = address->bytes();
    spec.a_record = std::array<std::uint8_t, 4>{bytes[0], bytes[1], bytes[2], bytes[3]};
    spec.ttl = static_cast<std::uint32_t>(std::clamp<std::chrono::seconds::rep>(
        config_.answer_ttl.count(), 0, std::numeric_limits<std::int32_t>::max()));
    event.answer = address->to_string();
  }
  event.blocked = false;
  return finish(spec, std::move(event));
}

std::vector<std::uint8_t> DnsHandler::finish(const ResponseSpec& spec, DnsEvent event) {
  std::vector<std::uint8_t> response = write_response(spec);
  ++counters_.responses;
  switch (spec.rcode) {
    case rcode::noerror:
      if (spec.a_record) ++counters_.answered_a;
      else ++counters_.nodata;
      break;
    case rcode::formerr: ++counters_.formerr; break;
    case rcode::notimp: ++counters_.notimp; break;
    case rcode::badvers: ++counters_.badvers; break;
    case rcode::servfail: ++counters_.servfail_exhausted; break;
    default:
      if (event.reason == dns_reason::ip_literal) ++counters_.refused_ip_literal;
      else if (event.reason == dns_reason::ptr_query) ++counters_.refused_ptr;
      else if (event.reason == dns_reason::host_not_allowed || event.reason == dns_reason::blocked_host ||
               event.reason == dns_reason::denied_by_rule)
        ++counters_.refused_policy;
      else ++counters_.refused_other;
  }
  if (auto h = Header::parse(response); h && h->tc()) ++counters_.truncated;

  event.rcode = rcode_name(spec.rcode);
  if (events_.size() >= config_.max_events && !events_.empty()) {
    events_.pop_front();
    ++counters_.events_dropped;
  }
  if (config_.max_events > 0) events_.push_back(std::move(event));
  else ++counters_.events_dropped;
  return response;
}

}  // namespace airlock::dns
