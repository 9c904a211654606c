// Fuzzes the HTTP/1.x codec (proxy/http): the input as a guest's request stream, fed to
// a RequestParser in chunks whose sizes come from the first input bytes, feeding on after
// each head the way the proxy does, until an error or an upgrade; and the same input as
// an upstream's response stream to a ResponseParser that expects answers to a few GETs
// (and a HEAD), then finish(). Invariants, beyond "no crash": feed() never consumes more
// than it was given; a request feed reports at most one head (it stops after each); a
// request head serialises to bytes that parse back to the same head; the response
// parser consumes every byte it is given until it stops; an error or upgrade event is
// the last event of a parser, after which it consumes nothing.
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <variant>
#include <vector>

#include "proxy/http/request_parser.hpp"
#include "proxy/http/response_parser.hpp"
#include "proxy/http/serialize.hpp"

using namespace airlock::http;

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

template <typename Event, typename Head, typename Error, typename Upgrade>
void check_order(const std::vector<Event>& events, bool& stopped) {
  bool head_seen = false;
  for (const Event& event : events) {
    require(!stopped);
    // At most one head per feed() for requests is checked by the caller; here: no two
    // heads without something between them.
    if (std::holds_alternative<Head>(event)) {
      require(!head_seen || std::is_same_v<Head, ResponseHeadEvent>);
      head_seen = true;
    }
    if (std::holds_alternative<Error>(event) || std::holds_alternative<Upgrade>(event)) stopped = true;
  }
}

void fuzz_requests(std::span<const std::uint8_t> input, std::span<const std::uint8_t> sizes) {
  ParserLimits limits;
  limits.max_head_bytes = 4096;
  limits.max_headers = 32;
  RequestParser parser(limits);
  std::vector<RequestEvent> events;
  std::size_t pos = 0;
  std::size_t end = 0;  // bytes "received" so far
  std::size_t turn = 0;
  bool stopped = false;
  while (end < input.size() || pos < end) {
    if (end < input.size()) {
      const std::size_t chunk = sizes.empty() ? 7 : sizes[turn++ % sizes.size()] % 64 + 1;
      end = std::min(input.size(), end + chunk);
    }
    while (pos < end && !stopped) {
      events.clear();
      const std::size_t used = parser.feed(input.subspan(pos, end - pos), events);
      require(used <= end - pos);
      pos += used;
      check_order<RequestEvent, RequestHeadEvent, ParseErrorEvent, UpgradeEvent>(events, stopped);
      for (const RequestEvent& event : events) {
        if (auto* head = std::get_if<RequestHeadEvent>(&event)) {
          // A head serialises to something the parser reads back as the same head.
          RequestParser again;
          std::vector<RequestEvent> reread;
          const std::string wire = serialize_request_head(head->head);
          const auto* data = reinterpret_cast<const std::uint8_t*>(wire.data());
          again.feed({data, wire.size()}, reread);
          require(!reread.empty());
          const auto* back = std::get_if<RequestHeadEvent>(&reread.front());
          require(back != nullptr && back->head == head->head);
        }
      }
      if (used == 0 && events.empty()) break;
    }
    if (stopped) {
      events.clear();
      require(parser.feed(input.subspan(pos), events) == 0 && events.empty());
      return;
    }
    if (end == input.size() && pos < end) {
      // Everything was offered and the parser took no more: it must be mid-message.
      break;
    }
  }
}

void fuzz_responses(std::span<const std::uint8_t> input, std::span<const std::uint8_t> sizes) {
  ParserLimits limits;
  limits.max_head_bytes = 4096;
  limits.max_headers = 32;
  ResponseParser parser(limits);
  for (const char* method : {"GET", "GET", "HEAD", "GET", "POST", "GET"}) parser.expect_response_to(method);
  std::vector<ResponseEvent> events;
  bool stopped = false;
  std::size_t pos = 0;
  std::size_t turn = 0;
  while (pos < input.size() && !stopped) {
    const std::size_t chunk = sizes.empty() ? 5 : sizes[turn++ % sizes.size()] % 61 + 1;
    const std::size_t n = std::min(chunk, input.size() - pos);
    events.clear();
    const std::size_t used = parser.feed(input.subspan(pos, n), events);
    require(used <= n);
    check_order<ResponseEvent, ResponseHeadEvent, ResponseErrorEvent, ResponseUpgradeEvent>(events,
                                                                                          stopped);
    // Responses are forwarded raw: without a stop, every byte is consumed.
    if (!stopped) require(used == n);
    pos += used;
  }
  events.clear();
  parser.finish(events);
  require(!stopped || events.empty());
  require(events.size() <= 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> input(data, size);
  // The first byte says how many of the next bytes are chunk sizes.
  std::span<const std::uint8_t> sizes;
  if (!input.empty()) {
    const std::size_t count = std::min<std::size_t>(input[0] % 8, input.size() - 1);
    sizes = input.subspan(1, count);
    input = input.subspan(1 + count);
  }
  fuzz_requests(input, sizes);
  fuzz_responses(input, sizes);
  return 0;
}
