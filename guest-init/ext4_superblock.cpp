// ext4 superblock size reading (see ext4_superblock.hpp). Field offsets are from the
// kernel's struct ext4_super_block; every field is little-endian.
#include "guest-init/ext4_superblock.hpp"

namespace airlock::guest {
namespace {

constexpr std::size_t kBlocksCountLo = 0x04;
constexpr std::size_t kLogBlockSize = 0x18;
constexpr std::size_t kMagic = 0x38;
constexpr std::size_t kFeatureIncompat = 0x60;
constexpr std::size_t kBlocksCountHi = 0x150;
constexpr std::uint16_t kExt4Magic = 0xEF53;
constexpr std::uint32_t kIncompat64Bit = 0x80;
constexpr std::uint32_t kMaxLogBlockSize = 6;  // 1 KiB << 6 = 64 KiB, the largest ext4 allows

std::uint32_t le32(std::span<const std::uint8_t> b, std::size_t at) {
  return std::uint32_t{b[at]} | (std::uint32_t{b[at + 1]} << 8) | (std::uint32_t{b[at + 2]} << 16) |
         (std::uint32_t{b[at + 3]} << 24);
}

}  // namespace

std::optional<std::uint64_t> ext4_size_bytes(std::span<const std::uint8_t> superblock) {
  if (superblock.size() < kExt4SuperblockSize) return std::nullopt;
  const auto magic = static_cast<std::uint16_t>(superblock[kMagic] | (superblock[kMagic + 1] << 8));
  if (magic != kExt4Magic) return std::nullopt;
  const std::uint32_t log_block = le32(superblock, kLogBlockSize);
  if (log_block > kMaxLogBlockSize) return std::nullopt;
  std::uint64_t blocks = le32(superblock, kBlocksCountLo);
  if ((le32(superblock, kFeatureIncompat) & kIncompat64Bit) != 0)
    blocks |= std::uint64_t{le32(superblock, kBlocksCountHi)} << 32;
  const std::uint64_t block_size = std::uint64_t{1024} << log_block;
  if (blocks == 0 || blocks > UINT64_MAX / block_size) return std::nullopt;
  return blocks * block_size;
}

bool worth_growing(std::uint64_t disk_bytes, std::uint64_t fs_bytes) {
  return disk_bytes > fs_bytes && disk_bytes - fs_bytes >= kMinGrowBytes;
}

}  // namespace airlock::guest
