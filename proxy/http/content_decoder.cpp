// Streaming Content-Encoding decoders; see content_decoder.hpp.
#include "proxy/http/content_decoder.hpp"

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>

#include "proxy/http/message.hpp"

namespace airlock::http {

namespace {

// Stage output waiting for the next stage is kept under this.
constexpr std::size_t kBetweenCap = 64 * 1024;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The codings of a Content-Encoding value, in the order they were applied.
std::vector<std::string_view> codings_of(std::string_view value) {
  std::vector<std::string_view> out;
  while (!value.empty()) {
    const auto comma = value.find(',');
    const std::string_view item = trim(value.substr(0, comma));
    if (!item.empty() && !iequals(item, "identity")) out.push_back(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return out;
}

// Grows `out` by up to `room` bytes for a decoder to write into; shrink() gives back what
// it did not use.
struct Tail {
  std::vector<std::uint8_t>& out;
  std::size_t start;
  Tail(std::vector<std::uint8_t>& o, std::size_t room) : out(o), start(o.size()) { out.resize(start + room); }
  std::uint8_t* data() { return out.data() + start; }
  void shrink(std::size_t used) { out.resize(start + used); }
};

}  // namespace

class ContentDecoder::Stage {
 public:
  virtual ~Stage() = default;
  // Consumes a prefix of in, appending at most max_out bytes; returns the input taken.
  virtual std::size_t step(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out,
                           std::size_t max_out, std::string& error) = 0;
  // The encoded stream has ended (a complete frame / member).
  virtual bool ended() const = 0;
};

namespace {

class ZlibStage final : public ContentDecoder::Stage {
 public:
  explicit ZlibStage(bool gzip) : gzip_(gzip) {}
  ~ZlibStage() override {
    if (started_) inflateEnd(&z_);
  }

  std::size_t step(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out,
                   std::size_t max_out, std::string& error) override {
    if (!started_) {
      if (in.empty()) return 0;
      if (!gzip_ && in.size() < 2) return 0;  // the zlib-or-raw check needs two bytes
      int bits = 15 + 16;
      if (!gzip_) {
        // RFC 9110 "deflate" is zlib-wrapped; some servers send a raw stream.
        const bool zlib_header = (in[0] & 0x0F) == 8 && ((in[0] << 8) | in[1]) % 31 == 0;
        bits = zlib_header ? 15 : -15;
      }
      if (inflateInit2(&z_, bits) != Z_OK) {
        error = "corrupt_encoding";
        return 0;
      }
      started_ = true;
    }
    std::size_t consumed = 0;
    Tail tail(out, max_out);
    std::size_t produced = 0;
    while (produced < max_out) {
      if (ended_) {
        if (consumed == in.size()) break;
        // A gzip body may hold several members, one after the other.
        if (!gzip_ || inflateReset(&z_) != Z_OK) {
          error = "corrupt_encoding";
          break;
        }
        ended_ = false;
      }
      z_.next_in = const_cast<Bytef*>(in.data() + consumed);
      z_.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size() - consumed, 1u << 30));
      z_.next_out = tail.data() + produced;
      z_.avail_out = static_cast<uInt>(max_out - produced);
      const uInt in_before = z_.avail_in;
      const uInt out_before = z_.avail_out;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      consumed += in_before - z_.avail_in;
      produced += out_before - z_.avail_out;
      if (rc == Z_STREAM_END) {
        ended_ = true;
        continue;
      }
      if (rc == Z_BUF_ERROR) break;  // no progress possible now: needs input or room
      if (rc != Z_OK) {
        error = "corrupt_encoding";
        break;
      }
      if (in_before == z_.avail_in && out_before == z_.avail_out) break;
    }
    tail.shrink(produced);
    return consumed;
  }
  bool ended() const override { return ended_; }

 private:
  bool gzip_;
  bool started_ = false;
  bool ended_ = false;
  z_stream z_{};
};

class BrotliStage final : public ContentDecoder::Stage {
 public:
  BrotliStage() : state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliStage() override { BrotliDecoderDestroyInstance(state_); }

  std::size_t step(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out,
                   std::size_t max_out, std::string& error) override {
    if (state_ == nullptr) {
      error = "corrupt_encoding";
      return 0;
    }
    Tail tail(out, max_out);
    std::size_t avail_in = in.size();
    const std::uint8_t* next_in = in.data();
    std::size_t avail_out = max_out;
    std::uint8_t* next_out = tail.data();
    if (ended_ && avail_in > 0) {
      error = "corrupt_encoding";  // bytes after the end of the stream
      tail.shrink(0);
      return 0;
    }
    const BrotliDecoderResult rc =
        BrotliDecoderDecompressStream(state_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
    if (rc == BROTLI_DECODER_RESULT_ERROR) error = "corrupt_encoding";
    if (rc == BROTLI_DECODER_RESULT_SUCCESS) {
      ended_ = true;
      if (avail_in > 0) error = "corrupt_encoding";
    }
    tail.shrink(max_out - avail_out);
    return in.size() - avail_in;
  }
  bool ended() const override { return ended_; }

 private:
  BrotliDecoderState* state_;
  bool ended_ = false;
};

class ZstdStage final : public ContentDecoder::Stage {
 public:
  ZstdStage() : ctx_(ZSTD_createDCtx()) {
    // Frames may not ask for more than an 8 MiB window (RFC 8878's recommendation for
    // HTTP): a hostile frame can't make the decoder reserve gigabytes.
    if (ctx_ != nullptr) ZSTD_DCtx_setParameter(ctx_, ZSTD_d_windowLogMax, 23);
  }
  ~ZstdStage() override { ZSTD_freeDCtx(ctx_); }

  std::size_t step(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out,
                   std::size_t max_out, std::string& error) override {
    if (ctx_ == nullptr) {
      error = "corrupt_encoding";
      return 0;
    }
    Tail tail(out, max_out);
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    ZSTD_outBuffer output{tail.data(), max_out, 0};
    while (output.pos < output.size) {
      const std::size_t in_before = input.pos;
      const std::size_t out_before = output.pos;
      const std::size_t rc = ZSTD_decompressStream(ctx_, &output, &input);
      if (ZSTD_isError(rc) != 0) {
        error = "corrupt_encoding";
        break;
      }
      // 0: a frame ended and is flushed; a new frame starts only with new input.
      if (rc == 0) frame_done_ = true;
      else if (input.pos > in_before) frame_done_ = false;
      if (input.pos == in_before && output.pos == out_before) break;
    }
    tail.shrink(output.pos);
    if (input.pos > 0) seen_input_ = true;
    return input.pos;
  }
  bool ended() const override { return frame_done_ && seen_input_; }

 private:
  ZSTD_DCtx* ctx_;
  bool frame_done_ = false;
  bool seen_input_ = false;
};

std::unique_ptr<ContentDecoder::Stage> make_stage(std::string_view coding) {
  if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) return std::make_unique<ZlibStage>(true);
  if (iequals(coding, "deflate")) return std::make_unique<ZlibStage>(false);
  if (iequals(coding, "br")) return std::make_unique<BrotliStage>();
  if (iequals(coding, "zstd")) return std::make_unique<ZstdStage>();
  return nullptr;
}

}  // namespace

ContentDecoder::~ContentDecoder() = default;

bool ContentDecoder::supported(std::string_view content_encoding) {
  for (std::string_view coding : codings_of(content_encoding))
    if (make_stage(coding) == nullptr) return false;
  return true;
}

Result<std::unique_ptr<ContentDecoder>> ContentDecoder::create(std::string_view content_encoding) {
  std::unique_ptr<ContentDecoder> decoder(new ContentDecoder());
  std::vector<std::string_view> codings = codings_of(content_encoding);
  for (auto it = codings.rbegin(); it != codings.rend(); ++it) {
    auto stage = make_stage(*it);
    if (!stage) return Error{"unsupported content coding: " + std::string(it->substr(0, 64))};
    decoder->stages_.push_back(std::move(stage));
  }
  if (decoder->stages_.size() > 4) return Error{"too many content codings"};
  decoder->between_.resize(decoder->stages_.empty() ? 0 : decoder->stages_.size() - 1);
  return decoder;
}

void ContentDecoder::fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
}

std::size_t ContentDecoder::run(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out,
                                std::size_t max_out) {
  const std::size_t n = stages_.size();
  const std::size_t out_start = out.size();
  std::size_t consumed = 0;
  for (;;) {
    bool progress = false;
    for (std::size_t k = n; k-- > 0;) {
      const bool last = k + 1 == n;
      std::vector<std::uint8_t>& dst = last ? out : between_[k];
      const std::size_t room = last ? max_out - std::min(max_out, out.size() - out_start)
                                    : kBetweenCap - std::min(kBetweenCap, dst.size());
      if (room == 0) continue;
      std::span<const std::uint8_t> src =
          k == 0 ? in.subspan(consumed) : std::span<const std::uint8_t>(between_[k - 1]);
      const std::size_t before = dst.size();
      std::string error;
      const std::size_t taken = stages_[k]->step(src, dst, room, error);
      if (!error.empty()) {
        fail(error);
        return consumed;
      }
      if (k == 0) {
        consumed += taken;
      } else if (taken > 0) {
        between_[k - 1].erase(between_[k - 1].begin(),
                              between_[k - 1].begin() + static_cast<std::ptrdiff_t>(taken));
      }
      if (taken > 0 || dst.size() > before) progress = true;
    }
    if (!progress || out.size() - out_start >= max_out) break;
  }
  return consumed;
}

std::size_t ContentDecoder::decode(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out,
                                   std::size_t max_out) {
  if (failed() || finished_) return 0;
  if (stages_.empty()) {
    const std::size_t n = std::min(in.size(), max_out);
    out.insert(out.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }
  return run(in, out, max_out);
}

void ContentDecoder::finish(std::vector<std::uint8_t>& out, std::size_t max_out) {
  if (failed() || finished_) return;
  const std::size_t before = out.size();
  run({}, out, max_out);
  if (failed()) return;
  if (out.size() - before >= max_out) return;  // more may follow: call again
  for (std::size_t k = 0; k < stages_.size(); ++k) {
    if (!stages_[k]->ended() || (k + 1 < stages_.size() && !between_[k].empty())) {
      fail("truncated_encoding");
      return;
    }
  }
  finished_ = true;
}

}  // namespace airlock::http
