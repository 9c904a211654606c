// DNS message reader and response writer; see message.hpp for the rules enforced.
#include "proxy/dns/message.hpp"

#include <algorithm>

namespace airlock::dns {

namespace {

// A read position in a message; every read checks the bounds and says "nothing" past them.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> message) : message_(message) {}

  std::size_t offset() const { return offset_; }
  bool at_end() const { return offset_ == message_.size(); }

  std::optional<std::uint8_t> u8() {
    if (offset_ >= message_.size()) return std::nullopt;
    return message_[offset_++];
  }
  std::optional<std::uint16_t> u16() {
    if (message_.size() - offset_ < 2) return std::nullopt;
    auto value = static_cast<std::uint16_t>((message_[offset_] << 8) | message_[offset_ + 1]);
    offset_ += 2;
    return value;
  }
  std::optional<std::uint32_t> u32() {
    auto high = u16();
    auto low = u16();
    if (!high || !low) return std::nullopt;
    return (std::uint32_t{*high} << 16) | *low;
  }
  std::optional<std::span<const std::uint8_t>> bytes(std::size_t count) {
    if (message_.size() - offset_ < count) return std::nullopt;
    auto out = message_.subspan(offset_, count);
    offset_ += count;
    return out;
  }

  // A possibly compressed name starting here; the position moves past its bytes in place
  // (a pointer counts two bytes, whatever it points at).
  std::optional<Name> name() {
    Name out;
    std::size_t pos = offset_;            // where the next label byte is read
    std::size_t stretch_start = offset_;  // a pointer must jump before this
    std::optional<std::size_t> resume;    // where the caller continues, once we jumped
    int hops = 0;
    for (;;) {
      if (pos >= message_.size()) return std::nullopt;
      std::uint8_t length = message_[pos];
      if ((length & 0xC0) == 0xC0) {
        if (pos + 1 >= message_.size()) return std::nullopt;
        std::size_t target = (std::size_t{length & 0x3Fu} << 8) | message_[pos + 1];
        if (target >= stretch_start || ++hops > kMaxPointerHops) return std::nullopt;
        if (!resume) resume = pos + 2;
        pos = stretch_start = target;
        continue;
      }
      if ((length & 0xC0) != 0) return std::nullopt;  // 0x40, 0x80: not in use
      if (out.size + 1 + length > kMaxNameWire) return std::nullopt;
      if (message_.size() - pos - 1 < length) return std::nullopt;
      std::copy_n(message_.begin() + static_cast<std::ptrdiff_t>(pos), 1 + length,
                  out.bytes.begin() + static_cast<std::ptrdiff_t>(out.size));
      out.size += 1 + length;
      pos += 1 + length;
      if (length == 0) break;
    }
    offset_ = resume ? *resume : pos;
    return out;
  }

 private:
  std::span<const std::uint8_t> message_;
  std::size_t offset_ = 0;
};

std::optional<Record> read_record(Reader& reader) {
  Record record;
  auto name = reader.name();
  auto type = reader.u16();
  auto klass = reader.u16();
  auto ttl = reader.u32();
  auto rdlength = reader.u16();
  if (!name || !type || !klass || !ttl || !rdlength) return std::nullopt;
  auto rdata = reader.bytes(*rdlength);
  if (!rdata) return std::nullopt;
  record.name = *name;
  record.type = *type;
  record.klass = *klass;
  record.ttl = *ttl;
  record.rdata = *rdata;
  return record;
}

bool read_records(Reader& reader, std::uint16_t count, std::vector<Record>& out) {
  for (std::uint16_t i = 0; i < count; ++i) {
    auto record = read_record(reader);
    if (!record) return false;
    out.push_back(*record);
  }
  return true;
}

// Appends big-endian values; the writer only ever builds small messages.
class Writer {
 public:
  void u8(std::uint8_t value) { out_.push_back(value); }
  void u16(std::uint16_t value) {
    out_.push_back(static_cast<std::uint8_t>(value >> 8));
    out_.push_back(static_cast<std::uint8_t>(value & 0xFF));
  }
  void u32(std::uint32_t value) {
    u16(static_cast<std::uint16_t>(value >> 16));
    u16(static_cast<std::uint16_t>(value & 0xFFFF));
  }
  void bytes(std::span<const std::uint8_t> data) { out_.insert(out_.end(), data.begin(), data.end()); }
  std::vector<std::uint8_t> take() { return std::move(out_); }

 private:
  std::vector<std::uint8_t> out_;
};

constexpr std::size_t kARecordSize = 2 + 2 + 2 + 4 + 2 + 4;  // pointer name, A rdata
constexpr std::size_t kOptRecordSize = 1 + 2 + 2 + 4 + 2;     // root name, no options

std::vector<std::uint8_t> write(const ResponseSpec& spec, bool with_answer, bool truncated) {
  std::uint16_t flags = 0x8000;  // QR
  flags = static_cast<std::uint16_t>(flags | ((spec.opcode & 0xF) << 11));
  flags |= 0x0400;  // AA: the gateway is the authority for what the guest may resolve
  if (truncated) flags |= 0x0200;
  if (spec.rd) flags |= 0x0100;
  flags |= 0x0080;  // RA
  flags = static_cast<std::uint16_t>(flags | (spec.rcode & 0xF));

  Writer w;
  w.u16(spec.id);
  w.u16(flags);
  w.u16(spec.question ? 1 : 0);
  w.u16(with_answer ? 1 : 0);
  w.u16(0);
  w.u16(spec.edns ? 1 : 0);
  if (spec.question) {
    w.bytes(spec.question->name.wire());
    w.u16(spec.question->type);
    w.u16(spec.question->klass);
  }
  if (with_answer) {
    w.u16(0xC000 | kHeaderSize);  // the question's name, right after the header
    w.u16(rrtype::a);
    w.u16(kClassIn);
    w.u32(spec.ttl);
    w.u16(4);
    w.bytes(*spec.a_record);
  }
  if (spec.edns) {
    w.u8(0);  // root
    w.u16(rrtype::opt);
    w.u16(kEdnsUdpSize);
    w.u32(std::uint32_t{static_cast<std::uint8_t>(spec.rcode >> 4)} << 24);  // version 0, DO clear
    w.u16(0);
  }
  return w.take();
}

}  // namespace

std::string rrtype_name(std::uint16_t type) {
  switch (type) {
    case rrtype::a: return "A";
    case rrtype::ns: return "NS";
    case rrtype::cname: return "CNAME";
    case rrtype::soa: return "SOA";
    case rrtype::ptr: return "PTR";
    case rrtype::mx: return "MX";
    case rrtype::txt: return "TXT";
    case rrtype::aaaa: return "AAAA";
    case rrtype::srv: return "SRV";
    case rrtype::opt: return "OPT";
    case rrtype::svcb: return "SVCB";
    case rrtype::https: return "HTTPS";
    case rrtype::ixfr: return "IXFR";
    case rrtype::axfr: return "AXFR";
    case rrtype::any: return "ANY";
    default: return "TYPE" + std::to_string(type);
  }
}

std::optional<Header> Header::parse(std::span<const std::uint8_t> message) {
  Reader reader(message);
  Header h;
  auto id = reader.u16();
  auto flags = reader.u16();
  auto qd = reader.u16();
  auto an = reader.u16();
  auto ns = reader.u16();
  auto ar = reader.u16();
  if (!id || !flags || !qd || !an || !ns || !ar) return std::nullopt;
  h.id = *id;
  h.flags = *flags;
  h.qdcount = *qd;
  h.ancount = *an;
  h.nscount = *ns;
  h.arcount = *ar;
  return h;
}

std::optional<std::string> Name::text() const {
  std::string out;
  std::size_t pos = 0;
  while (pos < size) {
    std::size_t length = bytes[pos];
    if (length == 0) break;
    if (!out.empty()) out.push_back('.');
    for (std::size_t i = pos + 1; i <= pos + length && i < size; ++i) {
      if (bytes[i] == '.') return std::nullopt;
      out.push_back(static_cast<char>(bytes[i]));
    }
    pos += 1 + length;
  }
  return out;
}

std::optional<Message> Message::parse(std::span<const std::uint8_t> message) {
  if (message.size() > kMaxMessage) return std::nullopt;
  auto header = Header::parse(message);
  if (!header) return std::nullopt;
  std::size_t records = std::size_t{header->qdcount} + header->ancount + header->nscount +
                        header->arcount;
  if (records > kMaxRecords) return std::nullopt;

  Message out;
  out.header = *header;
  Reader reader(message);
  (void)reader.bytes(kHeaderSize);
  for (std::uint16_t i = 0; i < header->qdcount; ++i) {
    auto name = reader.name();
    auto type = reader.u16();
    auto klass = reader.u16();
    if (!name || !type || !klass) return std::nullopt;
    out.questions.push_back(Question{*name, *type, *klass});
  }
  if (!read_records(reader, header->ancount, out.answers) ||
      !read_records(reader, header->nscount, out.authority) ||
      !read_records(reader, header->arcount, out.additional))
    return std::nullopt;
  if (!reader.at_end()) return std::nullopt;
  return out;
}

std::optional<Query> Query::parse(std::span<const std::uint8_t> message) {
  auto parsed = Message::parse(message);
  if (!parsed) return std::nullopt;
  const Header& h = parsed->header;
  if (h.qr() || h.opcode() != kOpcodeQuery || h.qdcount != 1 || h.ancount != 0 ||
      h.nscount != 0 || h.arcount > 1)
    return std::nullopt;
  Query query;
  query.header = h;
  query.question = parsed->questions.front();
  if (query.question.type == rrtype::opt) return std::nullopt;
  if (h.arcount == 1) {
    const Record& opt = parsed->additional.front();
    if (opt.type != rrtype::opt || opt.name.size != 1) return std::nullopt;
    Edns edns;
    edns.udp_size = opt.klass;
    edns.extended_rcode = static_cast<std::uint8_t>(opt.ttl >> 24);
    edns.version = static_cast<std::uint8_t>((opt.ttl >> 16) & 0xFF);
    edns.dnssec_ok = (opt.ttl & 0x8000) != 0;
    query.edns = edns;
  }
  return query;
}

std::size_t Query::udp_limit() const {
  if (!edns) return kMaxUdpPlain;
  return std::clamp<std::size_t>(edns->udp_size, kMaxUdpPlain, kMaxUdpEdns);
}

std::vector<std::uint8_t> write_response(const ResponseSpec& spec) {
  bool with_answer = spec.a_record.has_value();
  std::size_t size = kHeaderSize + (spec.question ? spec.question->name.size + 4 : 0) +
                     (with_answer ? kARecordSize : 0) + (spec.edns ? kOptRecordSize : 0);
  bool truncated = with_answer && size > spec.limit;
  return write(spec, with_answer && !truncated, truncated);
}

}  // namespace airlock::dns
