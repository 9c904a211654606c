// Test helpers: real ClientHellos from an in-memory OpenSSL client, and TLS framing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "certs/openssl_ptr.hpp"

namespace airlock::tls::test {

struct HelloOptions {
  std::string sni;                // none when empty
  std::vector<std::string> alpn;  // none when empty
  int max_version = 0;            // e.g. TLS1_2_VERSION; 0 for OpenSSL's default
};

// The first flight of an OpenSSL client (SSL_connect on memory BIOs): the ClientHello
// in one record.
inline std::vector<std::uint8_t> openssl_client_hello(const HelloOptions& options) {
  certs::SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (options.max_version != 0) SSL_CTX_set_max_proto_version(ctx.get(), options.max_version);
  certs::SslPtr ssl(SSL_new(ctx.get()));
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in, -1);
  SSL_set_bio(ssl.get(), in, out);
  if (!options.sni.empty())
    SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(options.sni.c_str()));
  if (!options.alpn.empty()) {
    std::vector<unsigned char> wire;
    for (const std::string& protocol : options.alpn) {
      wire.push_back(static_cast<unsigned char>(protocol.size()));
      wire.insert(wire.end(), protocol.begin(), protocol.end());
    }
    SSL_set_alpn_protos(ssl.get(), wire.data(), static_cast<unsigned int>(wire.size()));
  }
  SSL_connect(ssl.get());  // wants to read the ServerHello: the hello is in `out`
  std::vector<std::uint8_t> hello(BIO_ctrl_pending(out));
  BIO_read(out, hello.data(), static_cast<int>(hello.size()));
  return hello;
}

// The handshake message inside a single-record flight (record header stripped).
inline std::vector<std::uint8_t> handshake_of(const std::vector<std::uint8_t>& record) {
  return std::vector<std::uint8_t>(record.begin() + 5, record.end());
}

// `message` framed in handshake records of at most `fragment` bytes each.
inline std::vector<std::uint8_t> frame(const std::vector<std::uint8_t>& message, std::size_t fragment,
                                       std::uint16_t version = 0x0301) {
  std::vector<std::uint8_t> out;
  for (std::size_t pos = 0; pos < message.size(); pos += fragment) {
    std::size_t length = std::min(fragment, message.size() - pos);
    out.push_back(0x16);
    out.push_back(static_cast<std::uint8_t>(version >> 8));
    out.push_back(static_cast<std::uint8_t>(version));
    out.push_back(static_cast<std::uint8_t>(length >> 8));
    out.push_back(static_cast<std::uint8_t>(length));
    out.insert(out.end(), message.begin() + static_cast<std::ptrdiff_t>(pos),
               message.begin() + static_cast<std::ptrdiff_t>(pos + length));
  }
  return out;
}

}  // namespace airlock::tls::test
