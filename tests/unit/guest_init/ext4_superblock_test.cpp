// ext4 superblock size reading for the root file system grow.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "guest-init/ext4_superblock.hpp"

using namespace airlock::guest;

namespace {

void put_le32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::vector<std::uint8_t> superblock(std::uint32_t blocks_lo, std::uint32_t log_block, std::uint32_t incompat = 0,
                                     std::uint32_t blocks_hi = 0) {
  std::vector<std::uint8_t> b(kExt4SuperblockSize, 0);
  put_le32(b, 0x04, blocks_lo);
  put_le32(b, 0x18, log_block);
  b[0x38] = 0x53;
  b[0x39] = 0xEF;
  put_le32(b, 0x60, incompat);
  put_le32(b, 0x150, blocks_hi);
  return b;
}

}  // namespace

TEST_CASE("size from a 4 KiB-block file system") {
  CHECK(ext4_size_bytes(superblock(131072, 2)) == 512ull << 20);
}

TEST_CASE("the high blocks count only counts with the 64bit feature") {
  CHECK(ext4_size_bytes(superblock(1, 2, 0, 1)) == 4096u);
  CHECK(ext4_size_bytes(superblock(1, 2, 0x80, 1)) == ((1ull << 32) + 1) * 4096);
}

TEST_CASE("implausible superblocks are unknown") {
  auto bad_magic = superblock(1000, 2);
  bad_magic[0x38] = 0;
  CHECK_FALSE(ext4_size_bytes(bad_magic));
  CHECK_FALSE(ext4_size_bytes(superblock(1000, 7)));             // block size above 64 KiB
  CHECK_FALSE(ext4_size_bytes(superblock(0, 2)));                // empty
  CHECK_FALSE(ext4_size_bytes(superblock(0xffffffff, 6, 0x80, 0xffffffff)));  // overflows
  const auto whole = superblock(1000, 2);
  CHECK_FALSE(ext4_size_bytes(std::span(whole).first(kExt4SuperblockSize - 1)));  // truncated
  CHECK_FALSE(ext4_size_bytes({}));
}

TEST_CASE("grow only for a real gain") {
  CHECK(worth_growing(2ull << 30, 400ull << 20));
  CHECK_FALSE(worth_growing(400ull << 20, 400ull << 20));
  CHECK_FALSE(worth_growing((400ull << 20) + 4096, 400ull << 20));
  CHECK_FALSE(worth_growing(300ull << 20, 400ull << 20));  // disk smaller: never shrink
}
