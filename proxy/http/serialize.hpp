// Bytes the proxy writes on an HTTP/1.1 connection: re-serialised request heads toward
// the upstream, chunked framing for re-framed request bodies, and the proxy's own error
// responses toward the guest.
//
// Requests are never forwarded as the bytes the guest sent: the head is rebuilt from the
// fields RequestParser accepted, so whatever the parser refused or normalised (OWS around
// values, trailers) cannot reach the upstream in another spelling.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "proxy/http/message.hpp"

namespace airlock::http {

// "METHOD TARGET HTTP/1.x\r\n", each header as "Name: value\r\n" in order, then "\r\n".
std::string serialize_request_head(const RequestHead& head);

// "HTTP/1.x STATUS REASON\r\n", the headers in order, then "\r\n". The reason phrase
// loses any byte that could end the line.
std::string serialize_response_head(const ResponseHead& head);

// One chunk of a chunked body: "<hex size>\r\n<data>\r\n"; empty data gives "" (an empty
// chunk would end the body).
std::string chunk_frame(std::span<const std::uint8_t> data);

// The last chunk of a chunked body, without trailers: "0\r\n\r\n".
std::string last_chunk();

// A complete HTTP/1.1 response carrying a JSON body (compact, then "\n") with
// Content-Type and Content-Length, and "Connection: close" when close is set. Strings
// that are not valid UTF-8 are replaced rather than thrown over.
std::string error_response(int status, std::string_view reason_phrase, const nlohmann::json& body,
                           bool close);

}  // namespace airlock::http
