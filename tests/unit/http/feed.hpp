// Drives the HTTP parsers the way the proxy does: bytes arrive in chunks, unconsumed
// bytes are kept and fed again, and the events are written down as text so that runs
// under different chunkings compare as plain string lists.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/http/request_parser.hpp"
#include "proxy/http/response_parser.hpp"

namespace airlock::http::test {

inline std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline std::string describe(const RequestHead& h) {
  std::string out = "head " + h.method + " " + h.target + " 1." + std::to_string(h.version_minor);
  out += h.keep_alive ? " keep-alive" : " close";
  if (h.chunked) out += " chunked";
  if (h.content_length) out += " cl=" + std::to_string(*h.content_length);
  if (h.expect_continue) out += " expect-continue";
  if (h.upgrade) out += " upgrade";
  for (const Header& header : h.headers) out += " [" + header.name + ": " + header.value + "]";
  return out;
}

inline std::string describe(const ResponseHead& h, bool informational) {
  std::string out = "head " + std::to_string(h.status) + " " + h.reason + " 1." +
                    std::to_string(h.version_minor);
  out += h.keep_alive ? " keep-alive" : " close";
  if (informational) out += " informational";
  for (const Header& header : h.headers) out += " [" + header.name + ": " + header.value + "]";
  return out;
}

// Events of one feed() call appended as text; consecutive body pieces merge.
inline bool record(const std::vector<RequestEvent>& events, std::vector<std::string>& log) {
  bool stop = false;
  for (const RequestEvent& event : events) {
    if (auto* head = std::get_if<RequestHeadEvent>(&event)) {
      log.push_back(describe(head->head));
    } else if (auto* body = std::get_if<BodyEvent>(&event)) {
      std::string data(body->data.begin(), body->data.end());
      if (!log.empty() && log.back().starts_with("body ")) log.back() += data;
      else log.push_back("body " + data);
    } else if (std::holds_alternative<MessageCompleteEvent>(event)) {
      log.push_back("complete");
    } else if (std::holds_alternative<UpgradeEvent>(event)) {
      log.push_back("upgrade");
      stop = true;
    } else if (auto* error = std::get_if<ParseErrorEvent>(&event)) {
      log.push_back("error " + error->reason);
      stop = true;
    }
  }
  return stop;
}

inline bool record(const std::vector<ResponseEvent>& events, std::vector<std::string>& log) {
  bool stop = false;
  for (const ResponseEvent& event : events) {
    if (auto* head = std::get_if<ResponseHeadEvent>(&event)) {
      log.push_back(describe(head->head, head->informational));
    } else if (auto* body = std::get_if<ResponseBodyEvent>(&event)) {
      if (!log.empty() && log.back().starts_with("body ")) {
        log.back() = "body " + std::to_string(std::stoul(log.back().substr(5)) + body->bytes);
      } else {
        log.push_back("body " + std::to_string(body->bytes));
      }
    } else if (std::holds_alternative<ResponseCompleteEvent>(event)) {
      log.push_back("complete");
    } else if (std::holds_alternative<ResponseUpgradeEvent>(event)) {
      log.push_back("upgrade");
      stop = true;
    } else if (auto* error = std::get_if<ResponseErrorEvent>(&event)) {
      log.push_back("error " + error->reason);
      stop = true;
    }
  }
  return stop;
}

using Chunker = std::function<std::size_t()>;

// Feeds input in chunks from next_size. After an upgrade the bytes left over are logged
// as "rest <bytes>". For responses, methods are
// announced up front and finish() runs at the end when eof is set.
template <typename Parser>
std::vector<std::string> drive(Parser& parser, std::string_view input, const Chunker& next_size,
                               bool eof = false) {
  using Event = std::conditional_t<std::is_same_v<Parser, RequestParser>, RequestEvent, ResponseEvent>;
  std::vector<std::string> log;
  std::string buffer;
  std::size_t offset = 0;
  std::vector<Event> events;
  while (true) {
    if (offset < input.size()) {
      const std::size_t n = std::min(std::max<std::size_t>(next_size(), 1), input.size() - offset);
      buffer.append(input.substr(offset, n));
      offset += n;
    }
    while (true) {
      events.clear();
      const std::size_t used = parser.feed(bytes(buffer), events);
      if (used > buffer.size()) {
        log.push_back("consumed more than given");
        return log;
      }
      buffer.erase(0, used);
      if (record(events, log)) {
        // Where an error stops depends on the chunking (llhttp reports some at the end of
        // a span), and nothing reads on after one; after an upgrade the rest is tunnel data.
        if (log.back() == "upgrade") log.push_back("rest " + buffer + std::string(input.substr(offset)));
        return log;
      }
      if (used == 0 && events.empty()) break;
      if (buffer.empty()) break;
    }
    if (offset >= input.size()) break;
  }
  if constexpr (std::is_same_v<Parser, ResponseParser>) {
    if (eof) {
      events.clear();
      parser.finish(events);
      record(events, log);
    }
  }
  if (!buffer.empty()) log.push_back("buffered " + std::to_string(buffer.size()));
  return log;
}

inline std::string join(const std::vector<std::string>& log) {
  std::string out;
  for (const auto& line : log) out += line + "\n";
  return out;
}

// Runs input whole, byte by byte and in random chunk sizes (many seeds); every run must
// give the same log, which is returned.
template <typename Parser>
std::vector<std::string> parse_every_way(std::string_view input,
                                         const std::function<Parser()>& make, bool eof = false) {
  Parser whole_parser = make();
  const std::vector<std::string> whole =
      drive(whole_parser, input, [&] { return input.size(); }, eof);
  Parser byte_parser = make();
  const std::vector<std::string> by_byte = drive(byte_parser, input, [] { return std::size_t{1}; }, eof);
  CHECK(join(by_byte) == join(whole));
  for (unsigned seed = 1; seed <= 60; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::size_t> size(1, seed % 3 == 0 ? 4 : seed % 3 == 1 ? 17 : 97);
    Parser parser = make();
    const std::vector<std::string> chunked = drive(parser, input, [&] { return size(rng); }, eof);
    CHECK_MESSAGE(join(chunked) == join(whole), "seed " << seed);
  }
  return whole;
}

inline std::vector<std::string> requests(std::string_view input,
                                         const ParserLimits& limits = ParserLimits{}) {
  return parse_every_way<RequestParser>(input, [&] { return RequestParser(limits); });
}

inline std::vector<std::string> responses(std::string_view input,
                                          const std::vector<std::string>& methods, bool eof = false,
                                          const ParserLimits& limits = ParserLimits{}) {
  return parse_every_way<ResponseParser>(
      input,
      [&] {
        ResponseParser parser(limits);
        for (const auto& m : methods) parser.expect_response_to(m);
        return parser;
      },
      eof);
}

}  // namespace airlock::http::test
