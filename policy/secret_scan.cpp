// Matching placeholders and real values in traffic; see secret_scan.hpp.
#include "policy/secret_scan.hpp"

#include "policy/url.hpp"

#include <openssl/evp.h>

#include <algorithm>

namespace airlock::policy {

namespace {

std::string percent(std::string_view value, const char* hex) {
  std::string out;
  for (unsigned char c : value) {
    if (is_unreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    }
  }
  return out;
}

// The escapes a JSON encoder writes: \" \\ \/ (some do) and \u00XX for controls.
std::vector<std::string> json_forms(std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string plain, slashed;
  for (unsigned char c : value) {
    std::string piece;
    switch (c) {
      case '"': piece = "\\\""; break;
      case '\\': piece = "\\\\"; break;
      case '\n': piece = "\\n"; break;
      case '\r': piece = "\\r"; break;
      case '\t': piece = "\\t"; break;
      default:
        if (c < 0x20) {
          piece = "\\u00";
          piece.push_back(kHex[c >> 4]);
          piece.push_back(kHex[c & 0xF]);
        } else {
          piece.push_back(static_cast<char>(c));
        }
    }
    plain += piece;
    slashed += c == '/' ? std::string("\\/") : piece;
  }
  return {plain, slashed};
}

std::string base64(std::string_view bytes, bool url) {
  bytes = bytes.substr(0, bytes.size() / 3 * 3);  // whole groups only: the caller wants the stable middle
  std::string out(bytes.size() / 3 * 4 + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  if (url) {
    std::replace(out.begin(), out.end(), '+', '-');
    std::replace(out.begin(), out.end(), '/', '_');
  }
  return out;
}

}  // namespace

std::vector<ValueForm> value_forms(std::string_view value) {
  std::vector<ValueForm> forms;
  auto add = [&forms](std::string bytes, std::string form, bool replaceable) {
    if (bytes.empty()) return;
    for (const auto& f : forms)
      if (f.bytes == bytes) return;
    forms.push_back({std::move(bytes), std::move(form), replaceable});
  };
  add(std::string(value), "value", true);
  add(percent(value, "0123456789ABCDEF"), "percent", true);
  add(percent(value, "0123456789abcdef"), "percent", true);
  for (auto& j : json_forms(value)) add(std::move(j), "json", true);
  // base64: the value starts at offset 0, 1 or 2 of a 3-byte group in the encoded text;
  // skipping the bytes that share a group with its neighbours leaves whole groups whose
  // encoding is the same whatever surrounds the value. Short middles would match noise.
  constexpr std::size_t kMinBase64 = 8;
  for (std::size_t shift = 0; shift < 3; ++shift) {
    const std::size_t skip = (3 - shift) % 3;
    if (value.size() <= skip) continue;
    const std::string_view middle = value.substr(skip);
    for (bool url : {false, true}) {
      std::string encoded = base64(middle, url);
      if (encoded.size() >= kMinBase64) add(std::move(encoded), "base64", false);
    }
  }
  return forms;
}

MatchSet::MatchSet(std::vector<MatchRule> rules) : rules_(std::move(rules)) {
  std::erase_if(rules_, [](const MatchRule& r) { return r.bytes.empty(); });
  std::stable_sort(rules_.begin(), rules_.end(),
                   [](const MatchRule& a, const MatchRule& b) { return a.bytes.size() > b.bytes.size(); });
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const auto c = static_cast<unsigned char>(rules_[i].bytes.front());
    by_first_[c].push_back(static_cast<std::uint16_t>(i));
    first_[c] = true;
    max_length_ = std::max(max_length_, rules_[i].bytes.size());
  }
}

const MatchRule* MatchSet::match_at(std::string_view text) const {
  if (text.empty()) return nullptr;
  for (std::uint16_t i : by_first_[static_cast<unsigned char>(text.front())])
    if (text.starts_with(rules_[i].bytes)) return &rules_[i];
  return nullptr;
}

bool MatchSet::could_start(std::string_view text) const {
  if (text.empty()) return false;
  for (std::uint16_t i : by_first_[static_cast<unsigned char>(text.front())]) {
    const std::string& b = rules_[i].bytes;
    if (text.size() < b.size() && b.starts_with(text)) return true;
  }
  return false;
}

SecretRewriter::SecretRewriter(std::shared_ptr<const MatchSet> set) : set_(std::move(set)) {
  if (set_ && set_->empty()) set_.reset();
}

void SecretRewriter::feed(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) {
  if (stopped_) return;
  if (!set_) {
    out.insert(out.end(), in.begin(), in.end());
    return;
  }
  held_.append(reinterpret_cast<const char*>(in.data()), in.size());
  scan(false, out);
}

void SecretRewriter::feed(std::string_view in, std::string& out) {
  if (stopped_) return;
  if (!set_) {
    out.append(in);
    return;
  }
  held_.append(in);
  scan(false, out);
}

void SecretRewriter::finish(std::vector<std::uint8_t>& out) {
  if (!stopped_ && set_) scan(true, out);
}

void SecretRewriter::finish(std::string& out) {
  if (!stopped_ && set_) scan(true, out);
}

template <typename Out>
void SecretRewriter::scan(bool at_end, Out& out) {
  const std::string_view buffer = held_;
  auto emit = [&out](std::string_view bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); };
  std::size_t from = 0;  // first byte not yet emitted
  std::size_t i = 0;
  while (i < buffer.size()) {
    if (!set_->starts_some(static_cast<unsigned char>(buffer[i]))) {
      ++i;
      continue;
    }
    const std::string_view rest = buffer.substr(i);
    // A longer rule may still match once more bytes come: decide only then, so the output
    // never depends on where the input was cut.
    if (!at_end && set_->could_start(rest)) break;
    if (const MatchRule* rule = set_->match_at(rest)) {
      emit(buffer.substr(from, i - from));
      if (rule->action != MatchAction::replace) {
        stopped_ = Finding{rule->action, rule->secret, rule->form};
        held_.clear();
        return;
      }
      emit(rule->replacement);
      replaced_.insert(rule->secret);
      i += rule->bytes.size();
      from = i;
      continue;
    }
    ++i;
  }
  emit(buffer.substr(from, i - from));
  held_.erase(0, i);
}

RewriteResult rewrite_string(const MatchSet& set, std::string& text) {
  RewriteResult result;
  if (set.empty()) return result;
  // First pass finds and judges; a finding leaves the text untouched.
  struct Found {
    std::size_t at;
    const MatchRule* rule;
  };
  std::vector<Found> found;
  const std::string_view view = text;
  for (std::size_t i = 0; i < view.size();) {
    if (!set.starts_some(static_cast<unsigned char>(view[i]))) {
      ++i;
      continue;
    }
    const MatchRule* rule = set.match_at(view.substr(i));
    if (rule == nullptr) {
      ++i;
      continue;
    }
    if (rule->action != MatchAction::replace) {
      result.stopped = Finding{rule->action, rule->secret, rule->form};
      result.replaced.clear();
      return result;
    }
    found.push_back({i, rule});
    if (std::find(result.replaced.begin(), result.replaced.end(), rule->secret) == result.replaced.end())
      result.replaced.push_back(rule->secret);
    i += rule->bytes.size();
  }
  if (found.empty()) return result;
  std::string out;
  std::size_t from = 0;
  for (const Found& f : found) {
    out.append(view.substr(from, f.at - from));
    out.append(f.rule->replacement);
    from = f.at + f.rule->bytes.size();
  }
  out.append(view.substr(from));
  text = std::move(out);
  return result;
}

}  // namespace airlock::policy
