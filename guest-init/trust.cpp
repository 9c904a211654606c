// Installs the VM's CA in the guest; see trust.hpp.
#include "guest-init/trust.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace airlock::guest {

namespace {

constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kEnd = "-----END CERTIFICATE-----";

bool single_certificate(std::string_view pem) {
  if (pem.size() > kMaxCaPem || pem.rfind(kBegin, 0) != 0) return false;
  const auto end = pem.find(kEnd);
  if (end == std::string_view::npos || pem.find(kBegin, kBegin.size()) != std::string_view::npos)
    return false;
  for (unsigned char c : pem)
    if (c != '\n' && c != '\r' && (c < 0x20 || c > 0x7e)) return false;
  return true;
}

std::string write_file(const std::filesystem::path& path, std::string_view text, bool append) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  if (out) out << text;
  if (!out) return "cannot write " + path.string() + ": " + std::strerror(errno);
  return "";
}

}  // namespace

std::string install_ca(std::string_view pem, std::string_view root) {
  if (!single_certificate(pem)) return "the CA is not a single PEM certificate";
  std::string text(pem);
  if (text.back() != '\n') text += '\n';
  const std::filesystem::path base(root.empty() ? "/" : std::string(root));
  if (auto e = write_file(base / std::string(kCaFile).substr(1), text, false); !e.empty()) return e;
  return write_file(base / std::string(kCaBundle).substr(1), text, true);
}

}  // namespace airlock::guest
