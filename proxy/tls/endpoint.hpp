// TlsEndpoint: one TLS connection driven through OpenSSL memory BIOs, with no I/O.
//
// Theory of operation. The MITM holds two endpoints per intercepted flow: a server
// endpoint that terminates the guest's TLS with a leaf minted for the SNI, and a client
// endpoint that speaks TLS to the real upstream and verifies it. Neither touches a
// socket: the caller feeds the peer's ciphertext in (feed_ciphertext), lets the
// endpoint advance (step, read_plaintext, write_plaintext), and sends whatever
// take_ciphertext returns to the peer. The handshake needs as many rounds of that as
// the peers' flights; after it, plaintext goes in and out.
//
// Contexts. make_server_context(allow_h2): TLS 1.2 and 1.3, no session resumption (no
// tickets, no cache: every guest connection is a fresh handshake), ALPN "h2" selected
// when allowed and offered, else "http/1.1" when offered, and otherwise no ALPN at all -
// the handshake never fails over ALPN. The certificate is set per
// connection with set_certificate() before the ClientHello is fed, so it can be minted
// from the SNI parsed beforehand. make_client_context(): TLS 1.2+, the system trust
// store plus an optional extra CA file, peer verification on, ALPN offer "http/1.1"
// unless client() is given its own list. client() checks the name (or IP literal) the
// upstream's certificate must carry and sends SNI for names only (RFC 6066 forbids IP
// literals there). Client contexts keep the latest session per key (host:port, at most
// 256) and endpoints made with that key resume it: a resumed session was verified for the
// same name and port when it was made.
//
// Caps. The inbound memory BIO holds at most kMaxPendingCiphertext unread bytes:
// feed_ciphertext takes what fits and returns how much it took; the caller keeps the
// rest (or stops reading its socket) until read_plaintext/step have drained the BIO.
// write_plaintext likewise encrypts only while fewer than kMaxPendingCiphertext bytes
// wait in the outbound BIO, so take_ciphertext must be called between writes. Beyond
// these, only OpenSSL's own per-record buffers are held.
//
// Refusing a flow. send_alert_and_close(alert): on a server endpoint whose ClientHello
// has been fed but not yet processed by step() (and a context from
// make_server_context), the ClientHello is answered with that fatal alert (e.g.
// unrecognized_name) and nothing else. After the handshake,
// OpenSSL offers no way to send an arbitrary alert, so a close_notify alert is sent
// instead; the caller then closes the transport. In every other state the endpoint
// just becomes closed, sending nothing.
//
// Errors. A failed handshake or record leaves the endpoint failed, with error() holding
// OpenSSL's reasons and, for a certificate that did not verify, "certificate verify
// failed: <X509 verify error>". Nothing throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "certs/openssl_ptr.hpp"
#include "common/result.hpp"

namespace airlock::tls {

// Unread ciphertext held in either direction: four full TLS records and some.
inline constexpr std::size_t kMaxPendingCiphertext = 64 * 1024;
// Plaintext encrypted per write_plaintext call at most (one TLS record).
inline constexpr std::size_t kMaxPlaintextWrite = 16 * 1024;

// The context for guest-facing (server) endpoints; see the header comment.
Result<certs::SslCtxPtr> make_server_context(bool allow_h2 = false);

// The context for upstream (client) endpoints: default trust store plus extra_ca_file
// (PEM, may hold several certificates) when given; Error when the file does not load.
Result<certs::SslCtxPtr> make_client_context(const std::optional<std::filesystem::path>& extra_ca_file);

class TlsEndpoint {
 public:
  enum class State { handshaking, established, failed, closed };

  // A server endpoint (terminates the guest's TLS). The context must outlive it.
  static Result<std::unique_ptr<TlsEndpoint>> server(SSL_CTX* ctx);

  // A client endpoint to an upstream: SNI `sni` (omitted when empty or an IP literal),
  // certificate checked for `verify_host` (a DNS name or an IP literal; must not be
  // empty). The context must outlive it.
  // `session_key` (e.g. "host:port"), when given, keys the upstream sessions this
  // endpoint stores and resumes (see make_client_context).
  static Result<std::unique_ptr<TlsEndpoint>> client(SSL_CTX* ctx, std::string_view sni,
                                                     std::string_view verify_host,
                                                     const std::vector<std::string>& alpn = {},
                                                     std::string_view session_key = {});

  ~TlsEndpoint();
  TlsEndpoint(const TlsEndpoint&) = delete;
  TlsEndpoint& operator=(const TlsEndpoint&) = delete;

  // The server's certificate and key (not owned; OpenSSL keeps its own references).
  // Call before the ClientHello is processed. Error when they do not match.
  Result<bool> set_certificate(X509* certificate, EVP_PKEY* key);

  // Ciphertext from the peer; returns the bytes taken (less than offered when the
  // inbound buffer is full, 0 once failed or closed).
  std::size_t feed_ciphertext(std::span<const std::uint8_t> bytes);

  // Ciphertext to send to the peer, draining the outbound buffer. Also after a failure
  // or close: it may hold the alert or close_notify the peer should get.
  std::vector<std::uint8_t> take_ciphertext();

  // Advances the handshake with what has been fed; returns the state.
  State step();

  // Appends up to `max` decrypted bytes to `out`; returns how many (0 when none are
  // ready, once closed or failed, or after the peer's close_notify: see peer_closed()).
  std::size_t read_plaintext(std::vector<std::uint8_t>& out, std::size_t max);

  // Encrypts a prefix of `bytes` (see Caps above); returns the bytes consumed.
  std::size_t write_plaintext(std::span<const std::uint8_t> bytes);

  // Sends close_notify (once); the endpoint is closed afterwards.
  void close_notify();

  // Refuses the flow with a TLS alert where possible (see the header comment), e.g.
  // SSL_AD_ACCESS_DENIED or SSL_AD_UNRECOGNIZED_NAME; the endpoint is closed afterwards.
  void send_alert_and_close(int alert);

  State state() const { return state_; }
  std::string error() const { return error_; }
  // The negotiated ALPN protocol, empty when none.
  std::string alpn() const;
  // The negotiated protocol version ("TLSv1.3", "TLSv1.2"); no event carries it yet.
  std::string protocol_version() const;
  // The peer sent close_notify.
  bool peer_closed() const { return peer_closed_; }
  // A client endpoint resumed a stored session (no full handshake).
  bool resumed() const;
  const std::string& session_key() const { return session_key_; }

 private:
  friend Result<certs::SslCtxPtr> make_server_context(bool allow_h2);
  static Result<std::unique_ptr<TlsEndpoint>> make(SSL_CTX* ctx, bool is_server);
  // The ClientHello callback of make_server_context(): refuses the hello with
  // pending_alert_ when one is set.
  static int on_client_hello(SSL* ssl, int* alert, void* arg);

  TlsEndpoint(certs::SslPtr ssl, BIO* inbound, BIO* outbound, bool is_server);
  void fail(const std::string& what);

  certs::SslPtr ssl_;
  BIO* inbound_;   // owned by ssl_
  BIO* outbound_;  // owned by ssl_
  bool is_server_;
  State state_ = State::handshaking;
  std::string error_;
  bool peer_closed_ = false;
  bool sent_close_ = false;
  bool hello_seen_ = false;        // server: the ClientHello callback ran
  int pending_alert_ = 0;          // server: refuse the ClientHello with this alert
  bool alert_sent_ = false;
  std::string session_key_;        // client: where its sessions are stored
};

}  // namespace airlock::tls
