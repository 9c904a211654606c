// Fuzzes the gateway's DNS (proxy/dns): arbitrary bytes as one UDP query, and as a TCP
// stream cut by the TcpDnsFramer at chunk sizes derived from the input, each message
// answered in turn by one handler with a small fixed policy and a tiny pool (so pool
// exhaustion is reached). Invariants, beyond "no crash": every response reads back with
// Message::parse as a response (QR set) carrying the query's id; a UDP response fits 512
// bytes, or the EDNS size the query offered (at most 1232); an A answer is a pool
// address that maps back to the question's name; nothing is answered without a header or
// to a message with QR set.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "policy/evaluator.hpp"
#include "policy/host_pattern.hpp"
#include "proxy/dns/dns_handler.hpp"
#include "proxy/dns/tcp_framer.hpp"

using namespace airlock;
using namespace airlock::dns;

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

const policy::NetworkPolicy& fixed_policy() {
  static const policy::NetworkPolicy network = [] {
    policy::NetworkPolicy net;
    for (const char* text : {"example.com", "*.example.org", "pypi.org:443", "*.test:8080"})
      net.allowed_hosts.push_back(*policy::HostPattern::parse(text));
    for (const char* text : {"bad.example.org", "x.test:8080"})
      net.blocked_hosts.push_back(*policy::HostPattern::parse(text));
    return net;
  }();
  return network;
}

void check(std::span<const std::uint8_t> query, const std::optional<std::vector<std::uint8_t>>& response,
           Transport transport, const SyntheticPool& pool) {
  if (!response) return;
  auto header = Header::parse(query);
  require(header.has_value() && !header->qr());
  auto parsed = Message::parse(*response);
  require(parsed.has_value());
  require(parsed->header.qr());
  require(parsed->header.id == header->id);
  std::size_t limit = kMaxMessage;
  if (transport == Transport::udp) {
    auto q = Query::parse(query);
    limit = q ? q->udp_limit() : kMaxUdpPlain;
  }
  require(response->size() <= limit);
  require(parsed->questions.size() <= 1);
  for (const Record& answer : parsed->answers) {
    require(answer.type == rrtype::a && answer.rdata.size() == 4);
    require(parsed->header.rcode() == rcode::noerror && parsed->questions.size() == 1);
    auto address = policy::IpAddress::v4((std::uint32_t{answer.rdata[0]} << 24) |
                                         (std::uint32_t{answer.rdata[1]} << 16) |
                                         (std::uint32_t{answer.rdata[2]} << 8) | answer.rdata[3]);
    auto name = pool.name_for(address);
    require(name.has_value());
    auto text = parsed->questions[0].name.text();
    require(text.has_value() && policy::canonical_host_name(*text) == name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> input(data, size);
  const policy::NetworkPolicy& network = fixed_policy();
  policy::Evaluator evaluator(network);
  SyntheticPool::Config pool_config;
  pool_config.network = *policy::Cidr::parse("198.18.0.0/30");  // two addresses
  pool_config.min_idle = std::chrono::seconds(0);
  SyntheticPool pool(pool_config);
  DnsHandler::Config config;
  config.max_events = 4;
  DnsHandler handler(config, evaluator, network, pool);
  Clock::time_point now{};

  check(input, handler.answer(input, now, Transport::udp), Transport::udp, pool);
  check(input, handler.answer(input, now, Transport::tcp), Transport::tcp, pool);

  TcpDnsFramer framer;
  std::size_t chunk = size == 0 ? 1 : std::size_t{data[0]} % 37 + 1;
  for (std::size_t pos = 0; pos < size; pos += chunk) {
    if (!framer.feed(input.subspan(pos, std::min(chunk, size - pos)))) break;
    require(framer.pending_bytes() <= TcpDnsFramer::kMaxPendingBytes);
    while (auto message = framer.next()) {
      require(!message->empty() && message->size() <= TcpDnsFramer::kMaxMessageSize);
      now += std::chrono::seconds(1);
      check(*message, handler.answer(*message, now, Transport::tcp), Transport::tcp, pool);
    }
  }
  require(handler.events().size() <= config.max_events);
  return 0;
}
