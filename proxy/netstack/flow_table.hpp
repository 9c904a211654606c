// Building blocks of the TCP terminator's flow table: a byte queue for the per-flow
// buffers, the hash of a FlowKey, and wrap-around sequence-number comparisons.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "proxy/netstack/types.hpp"

namespace airlock::netstack {

// FIFO of bytes: append at the back, peek at any offset, consume from the front. The
// consumed prefix is dropped lazily, so the live bytes stay contiguous (a segment's
// payload is one span) and repeated small reads stay linear.
class ByteQueue {
 public:
  std::size_t size() const { return data_.size() - head_; }
  bool empty() const { return size() == 0; }
  void append(std::span<const std::uint8_t> bytes) { data_.insert(data_.end(), bytes.begin(), bytes.end()); }
  // `n` bytes starting `offset` bytes after the front; the caller keeps offset + n <= size().
  std::span<const std::uint8_t> peek(std::size_t offset, std::size_t n) const {
    return std::span<const std::uint8_t>(data_).subspan(head_ + offset, n);
  }
  void consume(std::size_t n) {
    head_ += n;
    if (head_ == data_.size()) {
      data_.clear();
      head_ = 0;
    } else if (head_ >= 64 * 1024 && head_ >= data_.size() / 2) {
      data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() {
    data_.clear();
    data_.shrink_to_fit();
    head_ = 0;
  }

 private:
  std::vector<std::uint8_t> data_;
  std::size_t head_ = 0;
};

struct FlowKeyHash {
  std::size_t operator()(const FlowKey& k) const {
    const std::uint64_t v = (std::uint64_t{k.dst_ip} << 32) | (std::uint64_t{k.guest_port} << 16) | k.dst_port;
    return std::hash<std::uint64_t>{}(v * 0x9e3779b97f4a7c15ULL);
  }
};

// RFC 793 comparisons modulo 2^32.
inline bool seq_lt(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) < 0; }
inline bool seq_le(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) <= 0; }
inline bool seq_gt(std::uint32_t a, std::uint32_t b) { return seq_lt(b, a); }

}  // namespace airlock::netstack
