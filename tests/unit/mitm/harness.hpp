// Test support for the MITM: policies, in-memory TLS peers and byte shuttling.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <doctest/doctest.h>

#include "certs/authority.hpp"
#include "certs/leaf_minter.hpp"
#include "policy/host_pattern.hpp"
#include "policy/policy.hpp"
#include "proxy/mitm/context.hpp"
#include "proxy/mitm/session.hpp"
#include "proxy/tls/endpoint.hpp"

namespace airlock::mitm::testing {

inline policy::HostPattern pattern(const std::string& text) {
  auto p = policy::HostPattern::parse(text);
  REQUIRE(p.ok());
  return *p;
}

inline policy::Host host(const std::string& text) {
  auto h = policy::Host::parse(text);
  REQUIRE(h.ok());
  return *h;
}

inline std::string text(const Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }
inline Bytes bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// A temporary file removed at scope end.
struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& content) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("airlock-mitm-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::ofstream(path) << content;
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

// An upstream origin's TLS identity, from its own CA.
struct Origin {
  certs::CertificateAuthority ca;
  std::unique_ptr<certs::LeafMinter> minter;
  TempFile ca_file;
  certs::SslCtxPtr server_ctx;

  Origin()
      : ca(certs::CertificateAuthority::create("test origin CA", std::chrono::system_clock::now())
               .value()),
        minter(std::make_unique<certs::LeafMinter>(ca)),
        ca_file(ca.certificate_pem()),
        server_ctx(tls::make_server_context().value()) {}
};

}  // namespace airlock::mitm::testing
