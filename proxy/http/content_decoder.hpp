// ContentDecoder: undoes a message body's Content-Encoding, streaming and bounded, so the
// proxy can see (and scrub) what the guest's client would see after decoding.
//
// Theory of operation. A Content-Encoding value lists codings in the order they were
// applied ("gzip", "br", "deflate, gzip"); decoding runs them in reverse, each stage's
// output feeding the next. Supported: gzip and x-gzip and deflate (zlib; a raw deflate
// stream is accepted too, as browsers do), br (brotli), zstd, identity. Anything else is
// unknown: create() refuses it, and the caller treats the body as one it can't inspect.
//
// Bounded. decode() consumes input only while it produces at most `max_out` bytes, and
// returns how much input it took; the caller keeps the rest and calls again once the
// output has gone on. So a small compressed body that expands hugely (a "zip bomb") is
// produced piece by piece at the pace of the reader, never held whole. Each stage keeps
// at most a few KiB of its own between calls. Corrupt input, data after the end of a
// stream, or a stream cut short at finish() is an error with a stable reason
// (corrupt_encoding, truncated_encoding).
// Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace airlock::http {

class ContentDecoder {
 public:
  class Stage;

  // A decoder for the codings listed in `content_encoding`; Error naming the first unknown
  // coding. An empty value or "identity" gives a decoder that copies.
  static Result<std::unique_ptr<ContentDecoder>> create(std::string_view content_encoding);
  // Whether every coding listed is one create() accepts.
  static bool supported(std::string_view content_encoding);

  ~ContentDecoder();
  ContentDecoder(const ContentDecoder&) = delete;
  ContentDecoder& operator=(const ContentDecoder&) = delete;

  // Decodes a prefix of `in`, appending at most about max_out bytes to out; returns the
  // input consumed. 0 with no output means "needs more input" or failed (see failed()).
  std::size_t decode(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out,
                     std::size_t max_out);
  // End of input: flushes what the stages still hold (up to max_out; call again while
  // finished() is false) and checks every stream ended.
  void finish(std::vector<std::uint8_t>& out, std::size_t max_out);
  bool finished() const { return finished_; }
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  bool identity() const { return stages_.empty(); }

 private:
  ContentDecoder() = default;
  void fail(std::string why);
  // Runs the stages, last first, over `in`; output to out. Returns the input taken.
  std::size_t run(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out,
                  std::size_t max_out);

  std::vector<std::unique_ptr<Stage>> stages_;  // in decoding order
  std::vector<std::vector<std::uint8_t>> between_;  // stage i's output not yet taken by i+1
  std::string error_;
  bool finished_ = false;
};

}  // namespace airlock::http
