// classify_first_bytes: TLS record headers, HTTP methods, prefixes, everything else.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/tls/classify.hpp"

using namespace airlock::tls;

namespace {

FlowKind classify(const std::string& text) {
  std::vector<std::uint8_t> bytes(text.begin(), text.end());
  return classify_first_bytes(bytes);
}

}  // namespace

TEST_CASE("first bytes classify as TLS, HTTP, opaque or need_more") {
  struct Row {
    std::string bytes;
    FlowKind kind;
  };
  const Row table[] = {
      {"", FlowKind::need_more},
      {"\x16", FlowKind::need_more},
      {"\x16\x03", FlowKind::need_more},
      {std::string("\x16\x03\x01", 3), FlowKind::tls},
      {std::string("\x16\x03\x03\x00\x10", 5), FlowKind::tls},
      {"\x16\x02\x01", FlowKind::opaque},
      {std::string("\x17\x03\x03", 3), FlowKind::opaque},
      {"GET / HTTP/1.1\r\n", FlowKind::http},
      {"GET ", FlowKind::http},
      {"GET", FlowKind::need_more},
      {"G", FlowKind::need_more},
      {"P", FlowKind::need_more},
      {"PU", FlowKind::need_more},
      {"POST /x HTTP/1.1\r\n", FlowKind::http},
      {"PUT /x", FlowKind::http},
      {"PATCH /x", FlowKind::http},
      {"DELETE /x", FlowKind::http},
      {"HEAD / HTTP/1.0", FlowKind::http},
      {"OPTIONS * HTTP/1.1", FlowKind::http},
      {"OPTIONS", FlowKind::need_more},
      {"CONNECT example.com:443 HTTP/1.1", FlowKind::http},
      {"TRACE / HTTP/1.1", FlowKind::http},
      {"get / HTTP/1.1", FlowKind::opaque},
      {"GETX / HTTP/1.1", FlowKind::opaque},
      {"GET/ HTTP/1.1", FlowKind::opaque},
      {"BREW / HTCPCP/1.0", FlowKind::opaque},
      {"SSH-2.0-OpenSSH_9.2\r\n", FlowKind::opaque},
      {std::string("\0\0\0\0", 4), FlowKind::opaque},
      {"X", FlowKind::opaque},
  };
  for (const Row& row : table) {
    CAPTURE(row.bytes);
    CHECK(classify(row.bytes) == row.kind);
  }
}

TEST_CASE("every proper prefix of a method and space needs more, the whole is HTTP") {
  for (std::string method : {"GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "OPTIONS ", "PATCH ", "CONNECT ",
                             "TRACE "}) {
    for (std::size_t length = 1; length < method.size(); ++length) {
      CAPTURE(method.substr(0, length));
      CHECK(classify(method.substr(0, length)) == FlowKind::need_more);
    }
    CHECK(classify(method) == FlowKind::http);
  }
}

TEST_CASE("kinds have stable names") {
  CHECK(std::string(to_string(FlowKind::tls)) == "tls");
  CHECK(std::string(to_string(FlowKind::opaque)) == "opaque");
}
