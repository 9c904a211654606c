// DNS messages (RFC 1035, EDNS per RFC 6891): a bounds-checked reader and the one
// response shape the gateway's handler writes.
//
// Theory of operation. Guests send queries; the reader turns the bytes into plain values
// or says "nothing" - it never reads past the span and never trusts a count. Names are
// decoded to their uncompressed wire form; a compression pointer must jump strictly
// before the start of the stretch it interrupts (so pointers can only go backwards and
// can't loop), at most kMaxPointerHops times, and the decoded name is capped at 255
// bytes with labels of 1..63 bytes. Label types 0x40/0x80 (extended, obsolete) are
// refused. Every section is walked (at most kMaxRecords records in all) and bytes after
// the last record make the message malformed.
//
// Message::parse reads any message (the fuzz target and tests read responses with it).
// Query::parse adds what a query to the gateway must be: QR clear, exactly one question,
// no answer or authority records, and in the additional section at most one record, an
// EDNS OPT with the root name. Anything else is malformed (the handler says FORMERR).
//
// The writer produces: the header (QR, opcode and RD echoed, AA and RA set, RCODE), the
// question echoed byte for byte (so 0x20 case randomisation survives), optionally one A
// record pointing back at the question's name, and an OPT record when the query had
// one. If that exceeds the size limit, the answer is dropped and TC set.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace airlock::dns {

inline constexpr std::size_t kHeaderSize = 12;
inline constexpr std::size_t kMaxNameWire = 255;    // RFC 1035 2.3.4, with the root label
inline constexpr std::size_t kMaxLabel = 63;
inline constexpr int kMaxPointerHops = 16;
inline constexpr std::size_t kMaxRecords = 32;      // records read per message, all sections
inline constexpr std::size_t kMaxUdpPlain = 512;    // UDP response size without EDNS
inline constexpr std::size_t kMaxUdpEdns = 1232;    // the DNS flag day 2020 size
inline constexpr std::size_t kMaxMessage = 65535;   // anything, DNS over TCP included

namespace rcode {
inline constexpr std::uint16_t noerror = 0;
inline constexpr std::uint16_t formerr = 1;
inline constexpr std::uint16_t servfail = 2;
inline constexpr std::uint16_t nxdomain = 3;
inline constexpr std::uint16_t notimp = 4;
inline constexpr std::uint16_t refused = 5;
inline constexpr std::uint16_t badvers = 16;  // extended: needs an OPT record
}  // namespace rcode

namespace rrtype {
inline constexpr std::uint16_t a = 1;
inline constexpr std::uint16_t ns = 2;
inline constexpr std::uint16_t cname = 5;
inline constexpr std::uint16_t soa = 6;
inline constexpr std::uint16_t ptr = 12;
inline constexpr std::uint16_t mx = 15;
inline constexpr std::uint16_t txt = 16;
inline constexpr std::uint16_t aaaa = 28;
inline constexpr std::uint16_t srv = 33;
inline constexpr std::uint16_t opt = 41;
inline constexpr std::uint16_t svcb = 64;
inline constexpr std::uint16_t https = 65;
inline constexpr std::uint16_t ixfr = 251;
inline constexpr std::uint16_t axfr = 252;
inline constexpr std::uint16_t any = 255;
}  // namespace rrtype

inline constexpr std::uint16_t kClassIn = 1;
inline constexpr std::uint8_t kOpcodeQuery = 0;

// "A", "AAAA", "HTTPS", ... or "TYPE<n>" (RFC 3597) for the rest.
std::string rrtype_name(std::uint16_t type);

struct Header {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;
  std::uint16_t qdcount = 0;
  std::uint16_t ancount = 0;
  std::uint16_t nscount = 0;
  std::uint16_t arcount = 0;

  // The first 12 bytes; nullopt when there are fewer.
  static std::optional<Header> parse(std::span<const std::uint8_t> message);

  bool qr() const { return (flags & 0x8000) != 0; }
  std::uint8_t opcode() const { return static_cast<std::uint8_t>((flags >> 11) & 0xF); }
  bool aa() const { return (flags & 0x0400) != 0; }
  bool tc() const { return (flags & 0x0200) != 0; }
  bool rd() const { return (flags & 0x0100) != 0; }
  bool ra() const { return (flags & 0x0080) != 0; }
  std::uint8_t rcode() const { return static_cast<std::uint8_t>(flags & 0xF); }
};

// A domain name in uncompressed wire form, root label included (so never empty once read).
struct Name {
  std::array<std::uint8_t, kMaxNameWire> bytes{};
  std::size_t size = 0;

  std::span<const std::uint8_t> wire() const { return {bytes.data(), size}; }
  // Dotted text without the trailing dot ("" for the root), bytes as they came. nullopt
  // when a label holds a '.' byte, which dotted text can't say unambiguously.
  std::optional<std::string> text() const;
};

struct Question {
  Name name;
  std::uint16_t type = 0;
  std::uint16_t klass = 0;
};

// A resource record; rdata views the parsed message, which must outlive it.
struct Record {
  Name name;
  std::uint16_t type = 0;
  std::uint16_t klass = 0;
  std::uint32_t ttl = 0;
  std::span<const std::uint8_t> rdata;
};

struct Message {
  Header header;
  std::vector<Question> questions;
  std::vector<Record> answers;
  std::vector<Record> authority;
  std::vector<Record> additional;

  static std::optional<Message> parse(std::span<const std::uint8_t> message);
};

// What an OPT record says (RFC 6891 6.1.3).
struct Edns {
  std::uint16_t udp_size = 0;       // as sent; values below 512 mean 512
  std::uint8_t extended_rcode = 0;
  std::uint8_t version = 0;
  bool dnssec_ok = false;
};

struct Query {
  Header header;
  Question question;
  std::optional<Edns> edns;

  // A standard query as described at the top; nullopt when malformed.
  static std::optional<Query> parse(std::span<const std::uint8_t> message);

  // The largest UDP response this query lets us send.
  std::size_t udp_limit() const;
};

struct ResponseSpec {
  std::uint16_t id = 0;
  std::uint8_t opcode = 0;
  bool rd = false;
  std::uint16_t rcode = rcode::noerror;      // extended values (> 15) need edns
  const Question* question = nullptr;        // echoed when set
  std::optional<std::array<std::uint8_t, 4>> a_record;  // the one A answer, if any
  std::uint32_t ttl = 0;
  bool edns = false;                         // add an OPT record
  std::size_t limit = kMaxUdpPlain;          // size cap; TC set when the answer won't fit
};

// The advertised UDP payload size in our OPT records.
inline constexpr std::uint16_t kEdnsUdpSize = static_cast<std::uint16_t>(kMaxUdpEdns);

std::vector<std::uint8_t> write_response(const ResponseSpec& spec);

}  // namespace airlock::dns
