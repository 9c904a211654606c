// Secret scanning: finding placeholders and real secret values in traffic, in any split.
//
// Theory of operation. A MatchSet is a small table of byte patterns, each with what to do
// where it is found: replace it (a placeholder by its real value on a request to the
// secret's host; a real value by its placeholder in a response), or stop the message as a
// leak (a placeholder or a real value bound for a host the secret doesn't name) or as
// unsafe (an encoded real value that can't be replaced in kind). The SecretStore builds
// the sets (request_matches, response_matches); this file only matches.
//
// Real values are looked for in the forms a client decodes without being asked to: the
// raw bytes, percent-encoding (upper- and lower-case hex), JSON string escapes, and
// base64 (standard and URL alphabets, at each of the three alignments a value can have
// inside a longer encoded text: the stable middle of each). A placeholder is letters,
// digits and '_', so it is its own percent and JSON form; base64 forms can't be replaced
// in kind and stop the message.
//
// SecretRewriter applies a set to a message that arrives in pieces: it emits every byte
// that can no longer be the start of a match and holds back at most the longest
// pattern's length - 1 bytes, whatever the message's size. Output equals rewriting the
// whole message at once. After a leak or unsafe finding nothing more is emitted; the
// caller refuses or cuts the message. Findings name the secret, never its value.
// Pure: no I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::policy {

enum class MatchAction : std::uint8_t {
  replace,  // emit `replacement` instead
  leak,     // a secret going where it may not: refuse
  unsafe,   // a real value in a form that can't be replaced: cut
};

struct MatchRule {
  std::string bytes;        // what to look for (never empty)
  MatchAction action = MatchAction::replace;
  std::string replacement;  // for replace
  std::string secret;       // the secret's name, for findings and events
  std::string form;         // "placeholder", "value", "percent", "json", "base64"
};

class MatchSet {
 public:
  explicit MatchSet(std::vector<MatchRule> rules);

  bool empty() const { return rules_.empty(); }
  std::size_t max_length() const { return max_length_; }
  const std::vector<MatchRule>& rules() const { return rules_; }

  // The longest rule matching text at its start, if any.
  const MatchRule* match_at(std::string_view text) const;
  // Whether text (the end of what has arrived so far) could still become a match.
  bool could_start(std::string_view text) const;
  bool starts_some(unsigned char c) const { return first_[c]; }

 private:
  std::vector<MatchRule> rules_;             // longest first
  std::array<std::vector<std::uint16_t>, 256> by_first_{};
  std::array<bool, 256> first_{};
  std::size_t max_length_ = 0;
};

struct Finding {
  MatchAction action = MatchAction::replace;
  std::string secret;
  std::string form;
};

class SecretRewriter {
 public:
  // `set` may be null: then every byte passes as is.
  explicit SecretRewriter(std::shared_ptr<const MatchSet> set);

  // Appends `in`, rewritten, to out, holding back a possible start of a match.
  void feed(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out);
  void feed(std::string_view in, std::string& out);
  // End of message: flushes what was held back.
  void finish(std::vector<std::uint8_t>& out);
  void finish(std::string& out);

  // A leak or unsafe finding: the message must not go on.
  const std::optional<Finding>& stopped() const { return stopped_; }
  // Names of the secrets replaced so far.
  const std::set<std::string>& replaced() const { return replaced_; }
  std::size_t held() const { return held_.size(); }
  bool active() const { return set_ != nullptr && !set_->empty(); }

 private:
  template <typename Out>
  void scan(bool at_end, Out& out);

  std::shared_ptr<const MatchSet> set_;
  std::string held_;
  std::set<std::string> replaced_;
  std::optional<Finding> stopped_;
};

// Rewrites a whole string (a header value, a URL) in place. On a leak or unsafe finding
// the text is left as it was and the finding returned.
struct RewriteResult {
  std::vector<std::string> replaced;  // names, first seen first
  std::optional<Finding> stopped;
};
RewriteResult rewrite_string(const MatchSet& set, std::string& text);

// The forms of a real value that a client would decode by itself (see the header
// comment): value, percent (both cases), JSON escape and the base64 middles, each once.
struct ValueForm {
  std::string bytes;
  std::string form;
  bool replaceable = true;  // false for base64: found means unsafe
};
std::vector<ValueForm> value_forms(std::string_view value);

}  // namespace airlock::policy
