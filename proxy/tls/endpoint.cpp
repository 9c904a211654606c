// One TLS connection on memory BIOs; see endpoint.hpp.
#include "proxy/tls/endpoint.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <string_view>

#include <openssl/err.h>

#include "certs/leaf_minter.hpp"

namespace airlock::tls {

namespace {

constexpr std::string_view kHttp11 = "http/1.1";
constexpr std::string_view kH2 = "h2";
// ALPN wire form of the default client offer: length-prefixed "http/1.1".
constexpr std::array<unsigned char, 9> kAlpnOffer = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
// The select callback's argument when the server may choose h2.
bool kAllowH2 = true;

bool offered(std::span<const unsigned char> list, std::string_view protocol,
             const unsigned char** out, unsigned char* out_length) {
  std::size_t pos = 0;
  while (pos < list.size()) {
    const std::size_t length = list[pos];
    if (length == 0 || length > list.size() - pos - 1) break;
    auto name = list.subspan(pos + 1, length);
    if (std::equal(name.begin(), name.end(), protocol.begin(), protocol.end(),
                   [](unsigned char a, char b) { return a == static_cast<unsigned char>(b); })) {
      *out = name.data();
      *out_length = static_cast<unsigned char>(length);
      return true;
    }
    pos += 1 + length;
  }
  return false;
}

// Where a TlsEndpoint keeps a pointer to itself on its SSL (ex_data slot).
int endpoint_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Upstream sessions to resume, per client context: host:port -> the latest session, at
// most kMaxSessions, the least recently stored dropped first.
class SessionStore {
 public:
  static constexpr std::size_t kMaxSessions = 256;
  ~SessionStore() {
    for (auto& [key, session] : sessions_) SSL_SESSION_free(session);
  }
  void put(const std::string& key, SSL_SESSION* session) {
    auto it = sessions_.find(key);
    if (it != sessions_.end()) {
      SSL_SESSION_free(it->second);
      it->second = session;
      std::erase(order_, key);
    } else {
      if (sessions_.size() >= kMaxSessions && !order_.empty()) {
        auto old = sessions_.find(order_.front());
        if (old != sessions_.end()) {
          SSL_SESSION_free(old->second);
          sessions_.erase(old);
        }
        order_.erase(order_.begin());
      }
      sessions_[key] = session;
    }
    order_.push_back(key);
  }
  SSL_SESSION* get(const std::string& key) const {
    auto it = sessions_.find(key);
    return it == sessions_.end() ? nullptr : it->second;
  }

 private:
  std::map<std::string, SSL_SESSION*> sessions_;
  std::vector<std::string> order_;
};

void free_store(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<SessionStore*>(ptr); }

int store_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_store);
  return index;
}

SessionStore* store_of(SSL_CTX* ctx) { return static_cast<SessionStore*>(SSL_CTX_get_ex_data(ctx, store_index())); }

// Server ALPN choice: "h2" when allowed and offered, else "http/1.1" when offered, else
// no ALPN (NOACK lets the handshake go on without the extension rather than failing it).
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
                unsigned int in_length, void* allow_h2) {
  std::span<const unsigned char> list(in, in_length);
  if (allow_h2 != nullptr && offered(list, kH2, out, out_length)) return SSL_TLSEXT_ERR_OK;
  if (offered(list, kHttp11, out, out_length)) return SSL_TLSEXT_ERR_OK;
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

Result<certs::SslCtxPtr> make_server_context(bool allow_h2) {
  certs::SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Error{certs::openssl_error("SSL_CTX_new failed")};
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1)
    return Error{certs::openssl_error("TLS version")};
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, allow_h2 ? &kAllowH2 : nullptr);
  SSL_CTX_set_client_hello_cb(ctx.get(), TlsEndpoint::on_client_hello, nullptr);
  return ctx;
}

Result<certs::SslCtxPtr> make_client_context(const std::optional<std::filesystem::path>& extra_ca_file) {
  certs::SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Error{certs::openssl_error("SSL_CTX_new failed")};
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1)
    return Error{certs::openssl_error("TLS version")};
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1)
    return Error{certs::openssl_error("default trust store")};
  if (extra_ca_file && SSL_CTX_load_verify_file(ctx.get(), extra_ca_file->c_str()) != 1)
    return Error{certs::openssl_error("cannot load CA file " + extra_ca_file->string())};
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_set_alpn_protos(ctx.get(), kAlpnOffer.data(), kAlpnOffer.size()) != 0)  // 0 is success
    return Error{certs::openssl_error("ALPN")};
  // Sessions the origins give us are kept per host:port, so the next connection to the
  // same origin resumes (no certificate to verify, no signature) instead of a full
  // handshake. Only the endpoint's own key is ever looked up.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_set_ex_data(ctx.get(), store_index(), new SessionStore());
  SSL_CTX_sess_set_new_cb(ctx.get(), [](SSL* ssl, SSL_SESSION* session) -> int {
    auto* self = static_cast<TlsEndpoint*>(SSL_get_ex_data(ssl, endpoint_index()));
    SessionStore* store = store_of(SSL_get_SSL_CTX(ssl));
    if (self == nullptr || store == nullptr || self->session_key().empty()) return 0;
    // A copy: OpenSSL marks a connection's own session unresumable when the connection
    // ends without close_notify, which upstream connections often do.
    if (SSL_SESSION* copy = SSL_SESSION_dup(session)) store->put(self->session_key(), copy);
    return 0;
  });
  return ctx;
}

TlsEndpoint::TlsEndpoint(certs::SslPtr ssl, BIO* inbound, BIO* outbound, bool is_server)
    : ssl_(std::move(ssl)), inbound_(inbound), outbound_(outbound), is_server_(is_server) {}

TlsEndpoint::~TlsEndpoint() = default;

Result<std::unique_ptr<TlsEndpoint>> TlsEndpoint::make(SSL_CTX* ctx, bool is_server) {
  if (ctx == nullptr) return Error{"no TLS context"};
  ERR_clear_error();
  certs::SslPtr ssl(SSL_new(ctx));
  if (!ssl) return Error{certs::openssl_error("SSL_new failed")};
  BIO* inbound = BIO_new(BIO_s_mem());
  BIO* outbound = BIO_new(BIO_s_mem());
  if (inbound == nullptr || outbound == nullptr) {
    BIO_free(inbound);
    BIO_free(outbound);
    return Error{certs::openssl_error("BIO_new failed")};
  }
  // An empty BIO means "retry later", not end of stream.
  BIO_set_mem_eof_return(inbound, -1);
  BIO_set_mem_eof_return(outbound, -1);
  SSL_set_bio(ssl.get(), inbound, outbound);  // ssl owns both from here
  // Idle connections give their record buffers back (a proxy holds many of them).
  SSL_set_mode(ssl.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
  if (is_server)
    SSL_set_accept_state(ssl.get());
  else
    SSL_set_connect_state(ssl.get());
  SSL* raw = ssl.get();
  std::unique_ptr<TlsEndpoint> endpoint(new TlsEndpoint(std::move(ssl), inbound, outbound, is_server));
  if (SSL_set_ex_data(raw, endpoint_index(), endpoint.get()) != 1)
    return Error{certs::openssl_error("SSL_set_ex_data failed")};
  return endpoint;
}

Result<std::unique_ptr<TlsEndpoint>> TlsEndpoint::server(SSL_CTX* ctx) { return make(ctx, true); }

Result<std::unique_ptr<TlsEndpoint>> TlsEndpoint::client(SSL_CTX* ctx, std::string_view sni,
                                                         std::string_view verify_host,
                                                         const std::vector<std::string>& alpn,
                                                         std::string_view session_key) {
  if (verify_host.empty()) return Error{"no host to verify the upstream certificate for"};
  auto made = make(ctx, false);
  if (!made) return made;
  SSL* ssl = (*made)->ssl_.get();
  if (!session_key.empty()) (*made)->session_key_ = std::string(session_key);
  if (!alpn.empty()) {
    std::vector<unsigned char> wire;
    for (const auto& protocol : alpn) {
      if (protocol.empty() || protocol.size() > 255) continue;
      wire.push_back(static_cast<unsigned char>(protocol.size()));
      wire.insert(wire.end(), protocol.begin(), protocol.end());
    }
    if (SSL_set_alpn_protos(ssl, wire.data(), static_cast<unsigned>(wire.size())) != 0)
      return Error{certs::openssl_error("ALPN")};
  }
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);  // whatever the context says

  std::string host(verify_host);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (certs::is_ip_literal(host)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1)
      return Error{certs::openssl_error("bad IP address to verify")};
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, host.c_str()) != 1) return Error{certs::openssl_error("bad host name to verify")};
  }

  std::string server_name(sni);
  if (!server_name.empty() && !certs::is_ip_literal(server_name)) {
    // SSL_set_tlsext_host_name, without its C cast.
    if (SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(server_name.c_str())) != 1)
      return Error{certs::openssl_error("bad SNI")};
  }
  if (!session_key.empty())
    if (SessionStore* store = store_of(ctx))
      if (SSL_SESSION* session = store->get((*made)->session_key_); session && SSL_SESSION_is_resumable(session))
        SSL_set_session(ssl, session);
  return made;
}

int TlsEndpoint::on_client_hello(SSL* ssl, int* alert, void*) {
  auto* self = static_cast<TlsEndpoint*>(SSL_get_ex_data(ssl, endpoint_index()));
  if (self == nullptr) return SSL_CLIENT_HELLO_SUCCESS;
  self->hello_seen_ = true;
  if (self->pending_alert_ == 0) return SSL_CLIENT_HELLO_SUCCESS;
  *alert = self->pending_alert_;
  self->alert_sent_ = true;
  return SSL_CLIENT_HELLO_ERROR;
}

Result<bool> TlsEndpoint::set_certificate(X509* certificate, EVP_PKEY* key) {
  ERR_clear_error();
  if (certificate == nullptr || key == nullptr) return Error{"no certificate or key"};
  if (SSL_use_certificate(ssl_.get(), certificate) != 1 || SSL_use_PrivateKey(ssl_.get(), key) != 1 ||
      SSL_check_private_key(ssl_.get()) != 1)
    return Error{certs::openssl_error("certificate and key")};
  return true;
}

std::size_t TlsEndpoint::feed_ciphertext(std::span<const std::uint8_t> bytes) {
  if (state_ == State::failed || state_ == State::closed || bytes.empty()) return 0;
  std::size_t pending = BIO_ctrl_pending(inbound_);
  if (pending >= kMaxPendingCiphertext) return 0;
  std::size_t count = std::min(bytes.size(), kMaxPendingCiphertext - pending);
  int written = BIO_write(inbound_, bytes.data(), static_cast<int>(count));
  return written > 0 ? static_cast<std::size_t>(written) : 0;
}

std::vector<std::uint8_t> TlsEndpoint::take_ciphertext() {
  std::vector<std::uint8_t> out(BIO_ctrl_pending(outbound_));
  if (out.empty()) return out;
  int read = BIO_read(outbound_, out.data(), static_cast<int>(out.size()));
  out.resize(read > 0 ? static_cast<std::size_t>(read) : 0);
  return out;
}

TlsEndpoint::State TlsEndpoint::step() {
  if (state_ != State::handshaking) return state_;
  ERR_clear_error();
  int result = SSL_do_handshake(ssl_.get());
  if (result == 1) {
    state_ = State::established;
    return state_;
  }
  int code = SSL_get_error(ssl_.get(), result);
  if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) fail("TLS handshake failed");
  return state_;
}

std::size_t TlsEndpoint::read_plaintext(std::vector<std::uint8_t>& out, std::size_t max) {
  if (state_ == State::handshaking) step();
  if (state_ != State::established || peer_closed_) return 0;
  std::size_t total = 0;
  while (total < max) {
    std::size_t chunk = std::min(max - total, kMaxPlaintextWrite);
    std::size_t old_size = out.size();
    out.resize(old_size + chunk);
    std::size_t got = 0;
    ERR_clear_error();
    int result = SSL_read_ex(ssl_.get(), std::span(out).subspan(old_size).data(), chunk, &got);
    out.resize(old_size + (result == 1 ? got : 0));
    if (result == 1) {
      total += got;
      continue;
    }
    int code = SSL_get_error(ssl_.get(), result);
    if (code == SSL_ERROR_ZERO_RETURN)
      peer_closed_ = true;
    else if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE)
      fail("TLS read failed");
    break;
  }
  return total;
}

std::size_t TlsEndpoint::write_plaintext(std::span<const std::uint8_t> bytes) {
  if (state_ == State::handshaking) step();
  if (state_ != State::established || bytes.empty()) return 0;
  std::size_t pending = BIO_ctrl_pending(outbound_);
  if (pending >= kMaxPendingCiphertext) return 0;
  std::size_t count = std::min({bytes.size(), kMaxPlaintextWrite, kMaxPendingCiphertext - pending});
  std::size_t written = 0;
  ERR_clear_error();
  int result = SSL_write_ex(ssl_.get(), bytes.data(), count, &written);
  if (result == 1) return written;
  int code = SSL_get_error(ssl_.get(), result);
  if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) fail("TLS write failed");
  return 0;
}

bool TlsEndpoint::resumed() const { return SSL_session_reused(ssl_.get()) == 1; }

void TlsEndpoint::close_notify() {
  if (sent_close_) return;
  sent_close_ = true;
  if (state_ == State::established) {
    ERR_clear_error();
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }
  if (state_ != State::failed) state_ = State::closed;
}

void TlsEndpoint::send_alert_and_close(int alert) {
  if (state_ == State::established) {  // no arbitrary alerts after the handshake
    close_notify();
    return;
  }
  if (state_ == State::handshaking && is_server_ && !hello_seen_ && alert > 0) {
    pending_alert_ = alert;
    ERR_clear_error();
    SSL_do_handshake(ssl_.get());  // the ClientHello callback refuses with the alert
    ERR_clear_error();
    if (!alert_sent_) BIO_reset(outbound_);  // no callback ran: never send a ServerHello
  }
  sent_close_ = true;
  if (state_ != State::failed) state_ = State::closed;
}

std::string TlsEndpoint::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_.get(), &data, &length);
  if (data == nullptr || length == 0) return {};
  return std::string(reinterpret_cast<const char*>(data), length);
}

std::string TlsEndpoint::protocol_version() const { return SSL_get_version(ssl_.get()); }

void TlsEndpoint::fail(const std::string& what) {
  state_ = State::failed;
  error_ = certs::openssl_error(what);
  long verify = SSL_get_verify_result(ssl_.get());
  if (!is_server_ && verify != X509_V_OK) {
    if (error_.find("certificate verify failed") == std::string::npos) error_ += ": certificate verify failed";
    error_ += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
  }
}

}  // namespace airlock::tls
