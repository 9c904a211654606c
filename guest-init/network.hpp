// Guest network configuration, done by PID 1 itself with ioctl(2) on an AF_INET socket
// (the static binary carries no iproute2 and the rootfs's tools are not needed).
//
// Theory of operation. configure_network() runs after the root switch:
//   1. lo is always brought up (the kernel gives it 127.0.0.1/8 and ::1 by itself):
//      localhost must work in a VM without a network too.
//   2. Without airlock.ip (BootConfig::network absent) nothing else happens: any NIC
//      stays down.
//   3. With it, wait up to kInterfaceWait for eth0 (virtio_net was loaded from the
//      initramfs; its probe normally finished long before). Then, with the link still
//      down: IPv6 off for eth0 and for interfaces created later (the airlock network is
//      IPv4 only, and an up link would otherwise send router solicitations and DAD
//      probes and give programs a link-local address to try first), the MAC
//      (SIOCSIFHWADDR, when airlock.mac is given), the MTU (SIOCSIFMTU), the address
//      (SIOCSIFADDR) and netmask (SIOCSIFNETMASK; the kernel derives the broadcast);
//      then the link goes up (SIOCSIFFLAGS), which adds the subnet route, and the
//      default route via the gateway is added (SIOCADDRT).
//   4. With airlock.dns, /etc/resolv.conf of the new root is replaced (temp file +
//      rename, so a symlink there is replaced, not followed) by one nameserver line.
// lo keeps ::1 so programs that bind or connect to it explicitly still work.
// Failures are logged and the rest goes on where it makes sense; the VM still boots
// and says hello (the host sees the network does not work rather than a dead VM).
#pragma once

#include <chrono>

#include "guest-init/cmdline.hpp"

namespace airlock::guest {

inline constexpr const char* kNetInterface = "eth0";
inline constexpr std::chrono::seconds kInterfaceWait{2};

void configure_network(const BootConfig& config);

}  // namespace airlock::guest
