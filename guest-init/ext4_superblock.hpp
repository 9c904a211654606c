// Reads the size of an ext4 (or ext2/3) file system from its superblock.
//
// Used to decide whether the root file system is smaller than its disk and should be
// grown (root_grow.hpp). statfs(2) cannot answer that: ext4 reports f_blocks minus its
// metadata overhead, so a file system that already fills its disk would look smaller.
// The superblock is read from the block device, so its bytes are treated like any other
// untrusted input: bounds-checked, and anything odd (wrong magic, a block size outside
// 1 KiB..64 KiB, a byte count that overflows) is "unknown", never a guess.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace airlock::guest {

// Where the superblock starts on the device and how many bytes of it are needed.
inline constexpr std::size_t kExt4SuperblockOffset = 1024;
inline constexpr std::size_t kExt4SuperblockSize = 1024;

// Size of the file system in bytes (blocks count * block size), or nothing if the bytes
// are not a plausible ext2/3/4 superblock.
std::optional<std::uint64_t> ext4_size_bytes(std::span<const std::uint8_t> superblock);

// Grow only for a real gain: partial blocks and the slack resize2fs leaves at the end
// (a last block group too small to hold its own metadata) are not worth a run.
inline constexpr std::uint64_t kMinGrowBytes = 16ull << 20;
bool worth_growing(std::uint64_t disk_bytes, std::uint64_t fs_bytes);

}  // namespace airlock::guest
