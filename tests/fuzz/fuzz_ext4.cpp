// Fuzzes the ext4 superblock reader (guest-init grows the root file system by what it
// says, reading it from a disk the guest can write): never a crash or an out-of-bounds
// read, and a size it gives is a whole number of 1 KiB..64 KiB blocks.
#include <cstddef>
#include <cstdint>
#include <span>

#include "guest-init/ext4_superblock.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::span<const std::uint8_t>(data, size);
  if (auto fs = airlock::guest::ext4_size_bytes(bytes)) {
    if (size < airlock::guest::kExt4SuperblockSize || *fs % 1024 != 0) __builtin_trap();
    (void)airlock::guest::worth_growing(*fs + static_cast<std::uint64_t>(size), *fs);
  }
  (void)airlock::guest::worth_growing(size, size / 2);
  return 0;
}
