// Finding and opening the virtio-serial port named "airlock.ctl".
//
// The port appears as /sys/class/virtio-ports/vportNpM with a "name" file; its device
// node is /dev/vportNpM, created from the "dev" file with mknod if devtmpfs has not made
// it. The node is set to 0600 root so only guest-init can open it (and the driver allows
// one opener at a time, which guest-init holds). Opened non-blocking and close-on-exec.
#pragma once

#include <chrono>

namespace airlock::guest {

// Waits up to `wait` for the port to show up; returns an fd or -1 (logged).
int open_control_port(std::chrono::milliseconds wait);

}  // namespace airlock::guest
