// Secret placeholders and their substitution; see secret_store.hpp.
#include "policy/secret_store.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <random>

namespace airlock::policy {

namespace {

constexpr int kDrawAttempts = 8;

bool is_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Either placeholder found inside the other (equal ones included).
bool overlapping(std::string_view a, std::string_view b) {
  return a.find(b) != std::string_view::npos || b.find(a) != std::string_view::npos;
}

// Fills buffer from the kernel's CSPRNG; std::random_device when getrandom is missing.
void fill_random(std::span<std::uint8_t> buffer) {
  std::size_t done = 0;
  while (done < buffer.size()) {
    const ssize_t n = getrandom(buffer.data() + done, buffer.size() - done, 0);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      std::random_device device;
      for (; done < buffer.size(); ++done) buffer[done] = static_cast<std::uint8_t>(device() & 0xFF);
    }
  }
}

}  // namespace

SecretStore::RandomHex SecretStore::kernel_random_hex() {
  return [](std::size_t n) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::vector<std::uint8_t> raw((n + 1) / 2);
    fill_random(raw);
    std::string out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint8_t byte = raw[i / 2];
      out.push_back(kHex[i % 2 == 0 ? byte >> 4 : byte & 0xF]);
    }
    return out;
  };
}

SecretStore::SecretStore(const std::vector<Secret>& secrets, RandomHex random_hex) {
  std::vector<std::string> placeholders(secrets.size());
  // Fixed placeholders first: a clash among them is the user's to fix.
  for (std::size_t i = 0; i < secrets.size(); ++i) {
    const Secret& secret = secrets[i];
    if (!secret.placeholder) continue;
    if (secret.placeholder->empty())
      throw PolicyError("secret " + secret.name + ": the placeholder is empty");
    for (std::size_t j = 0; j < i; ++j)
      if (!placeholders[j].empty() && overlapping(*secret.placeholder, placeholders[j]))
        throw PolicyError("secrets " + secrets[j].name + " and " + secret.name +
                          ": one placeholder equals or contains the other");
    placeholders[i] = *secret.placeholder;
  }
  // Random ones, drawn again on the (astronomically unlikely) clash.
  for (std::size_t i = 0; i < secrets.size(); ++i) {
    if (secrets[i].placeholder) continue;
    // As long as the value when the value is long enough for 16 random hex digits, so a
    // swap keeps lengths (Content-Length, and the proxy's reverse swap in responses).
    const std::size_t value_size = secrets[i].value.reveal().size();
    const std::size_t hex_chars =
        value_size >= kPlaceholderPrefix.size() + kMinMatchedHexChars && value_size <= kMaxMatchedSize
            ? value_size - kPlaceholderPrefix.size()
            : kRandomHexChars;
    for (int attempt = 0; attempt < kDrawAttempts && placeholders[i].empty(); ++attempt) {
      const std::string hex = random_hex(hex_chars);
      if (hex.size() != hex_chars || !is_hex(hex)) continue;
      std::string candidate = std::string(kPlaceholderPrefix) + hex;
      bool clash = false;
      for (const std::string& other : placeholders)
        clash = clash || (!other.empty() && overlapping(candidate, other));
      if (!clash) placeholders[i] = std::move(candidate);
    }
    if (placeholders[i].empty())
      throw PolicyError("secret " + secrets[i].name + ": could not draw a unique placeholder");
  }
  entries_.reserve(secrets.size());
  for (std::size_t i = 0; i < secrets.size(); ++i) {
    const Secret& secret = secrets[i];
    entries_.push_back({secret.name, std::move(placeholders[i]), secret.value, secret.hosts});
    const Entry& entry = entries_.back();
    max_placeholder_size_ = std::max(max_placeholder_size_, entry.placeholder.size());
    forms_.push_back(value_forms(entry.value.reveal()));
  }
  std::vector<MatchRule> rules;
  for (std::size_t i = 0; i < entries_.size(); ++i)
    for (const ValueForm& form : forms_[i])
      rules.push_back({form.bytes, form.replaceable ? MatchAction::replace : MatchAction::unsafe,
                       form.replaceable ? entries_[i].placeholder : std::string(), entries_[i].name,
                       form.form});
  if (!rules.empty()) response_matches_ = std::make_shared<const MatchSet>(std::move(rules));
}

std::shared_ptr<const MatchSet> SecretStore::request_matches(const Host& host, std::uint16_t port,
                                                            bool tls) const {
  std::vector<MatchRule> rules;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const Entry& entry = entries_[i];
    if (authorized(entry, host, port, tls)) {
      rules.push_back({entry.placeholder, MatchAction::replace, entry.value.reveal(), entry.name,
                       "placeholder"});
      continue;
    }
    rules.push_back({entry.placeholder, MatchAction::leak, "", entry.name, "placeholder"});
    for (const ValueForm& form : forms_[i])
      rules.push_back({form.bytes, MatchAction::leak, "", entry.name, form.form});
  }
  return std::make_shared<const MatchSet>(std::move(rules));
}

bool SecretStore::any_authorized(const Host& host, std::uint16_t port, bool tls) const {
  for (const Entry& entry : entries_)
    if (authorized(entry, host, port, tls)) return true;
  return false;
}

std::map<std::string, std::string> SecretStore::guest_env() const {
  std::map<std::string, std::string> env;
  for (const Entry& entry : entries_) env[entry.name] = entry.placeholder;
  return env;
}

bool SecretStore::authorized(const Entry& entry, const Host& host, std::uint16_t port, bool tls) const {
  if (!tls) return false;
  for (const HostPattern& pattern : entry.hosts)
    if (pattern.matches(host, port)) return true;
  return false;
}

SecretStore::Scan SecretStore::substitute(std::string& text, const Host& host, std::uint16_t port,
                                          bool tls) const {
  Scan scan;
  if (entries_.empty()) return scan;
  auto result = rewrite_string(*request_matches(host, port, tls), text);
  if (result.stopped) {
    scan.leaked = result.stopped->secret;
    return scan;
  }
  scan.swapped = std::move(result.replaced);
  return scan;
}

BodySubstituter::BodySubstituter(const SecretStore& store, Host host, std::uint16_t port, bool tls)
    : rewriter_(store.entries().empty() ? nullptr : store.request_matches(host, port, tls)) {}

void BodySubstituter::feed(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) {
  rewriter_.feed(in, out);
}

void BodySubstituter::finish(std::vector<std::uint8_t>& out) { rewriter_.finish(out); }

}  // namespace airlock::policy
