// Trusting the VM's CA inside the guest.
//
// The host sends the CA certificate (PEM) once after the hello. It is written where
// Debian's tools keep local CAs and appended to the system bundle that curl, Python,
// OpenSSL, git and Node (through NODE_EXTRA_CA_CERTS) read, so the guest's TLS clients
// accept the proxy's leaves unmodified. Only a single PEM certificate is accepted.
#pragma once

#include <string>
#include <string_view>

namespace airlock::guest {

inline constexpr std::string_view kCaFile = "/usr/local/share/ca-certificates/airlock-vm-ca.crt";
inline constexpr std::string_view kCaBundle = "/etc/ssl/certs/ca-certificates.crt";
inline constexpr std::size_t kMaxCaPem = 16 * 1024;

// Installs the certificate; returns "" or an error sentence.
std::string install_ca(std::string_view pem, std::string_view root = "");

}  // namespace airlock::guest
