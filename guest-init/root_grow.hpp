// Growing the root file system into the VM's disk.
//
// The image's rootfs.img is made just big enough for its content; each VM's qcow2
// layer carries the disk size the user asked for. After the root switch,
// start_root_grow() compares the block device's size (BLKGETSIZE64) with the file
// system's (its superblock, ext4_superblock.hpp) and, when the disk is bigger, starts
// the rootfs's own `/sbin/resize2fs DEVICE` (an online grow of the mounted ext4) in the
// background, so the hello is not delayed by it.
//
// The child is a small watcher process that runs resize2fs, keeps the tail of its
// output and logs the outcome on the console before exiting; PID 1 reaps the watcher
// like any orphan, so the control loop needs no knowledge of it. Both run niced and
// with the default signal mask (a shutdown's SIGTERM ends them). Never fatal: a guest
// whose file system could not grow still works, with less space.
#pragma once

namespace airlock::guest {

// Must run while guest-init is single-threaded (it forks and the child allocates).
void start_root_grow(const char* device);

}  // namespace airlock::guest
