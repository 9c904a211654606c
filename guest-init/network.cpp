// Static IPv4 configuration of lo and eth0 by ioctl (see network.hpp).
#include "guest-init/network.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest-init/log.hpp"

namespace airlock::guest {
namespace {

constexpr const char* kResolvConf = "/etc/resolv.conf";

// Closes the ioctl socket on every path.
class Socket {
 public:
  Socket() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

ifreq request_for(const char* name) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  return ifr;
}

sockaddr_in inet_sockaddr(const Ipv4Address& address) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  std::memcpy(&sin.sin_addr.s_addr, address.data(), address.size());  // already network order
  return sin;
}

void set_sockaddr(sockaddr& target, const Ipv4Address& address) {
  const sockaddr_in sin = inet_sockaddr(address);
  static_assert(sizeof(sin) <= sizeof(sockaddr));
  std::memcpy(&target, &sin, sizeof(sin));
}

// One ioctl with an ifreq, logged on failure.
bool if_ioctl(int fd, unsigned long op, ifreq& ifr, const char* what) {
  if (::ioctl(fd, op, &ifr) == 0) return true;
  log_errno(std::string("network: ") + what + " " + ifr.ifr_name, errno);
  return false;
}

bool bring_up(int fd, const char* name) {
  ifreq ifr = request_for(name);
  if (!if_ioctl(fd, SIOCGIFFLAGS, ifr, "get flags of")) return false;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  return if_ioctl(fd, SIOCSIFFLAGS, ifr, "bring up");
}

bool wait_for_interface(int fd, const char* name) {
  const auto until = std::chrono::steady_clock::now() + kInterfaceWait;
  while (true) {
    ifreq ifr = request_for(name);
    if (::ioctl(fd, SIOCGIFINDEX, &ifr) == 0) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void write_sysctl(const std::string& path, const char* value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  const std::size_t len = std::strlen(value);
  if (fd < 0 || ::write(fd, value, len) != static_cast<ssize_t>(len)) {
    // No IPv6 in the kernel at all is just as good.
    if (errno != ENOENT) log_errno("network: write " + path, errno);
  }
  if (fd >= 0) ::close(fd);
}

void disable_ipv6(const char* name) {
  for (const std::string conf : {"default", name})
    write_sysctl("/proc/sys/net/ipv6/conf/" + conf + "/disable_ipv6", "1");
}

bool add_default_route(int fd, const char* name, const Ipv4Address& gateway) {
  rtentry route{};
  set_sockaddr(route.rt_dst, Ipv4Address{});
  set_sockaddr(route.rt_genmask, Ipv4Address{});
  set_sockaddr(route.rt_gateway, gateway);
  route.rt_flags = RTF_UP | RTF_GATEWAY;
  char device[IFNAMSIZ] = {};
  std::strncpy(device, name, IFNAMSIZ - 1);
  route.rt_dev = device;
  if (::ioctl(fd, SIOCADDRT, &route) == 0 || errno == EEXIST) return true;
  log_errno("network: add default route via " + format_ipv4(gateway), errno);
  return false;
}

void write_resolv_conf(const Ipv4Address& dns) {
  const std::string temp = std::string(kResolvConf) + ".airlock-new";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << "nameserver " << format_ipv4(dns) << "\n";
    if (!out.flush()) {
      log_line("network: cannot write " + temp);
      return;
    }
  }
  if (std::rename(temp.c_str(), kResolvConf) != 0) {
    log_errno(std::string("network: replace ") + kResolvConf, errno);
    ::unlink(temp.c_str());
  }
}

// Everything eth0 needs; false if the interface is not usable.
bool configure_interface(int fd, const NetworkConfig& net) {
  const char* name = kNetInterface;
  if (!wait_for_interface(fd, name)) {
    log_line(std::string("network: ") + name + " did not appear; network left down");
    return false;
  }
  disable_ipv6(name);
  if (net.mac) {
    ifreq ifr = request_for(name);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    std::memcpy(ifr.ifr_hwaddr.sa_data, net.mac->data(), net.mac->size());
    if_ioctl(fd, SIOCSIFHWADDR, ifr, "set MAC of");  // QEMU's own address still works
  }
  if (net.mtu) {
    ifreq ifr = request_for(name);
    ifr.ifr_mtu = static_cast<int>(*net.mtu);
    if_ioctl(fd, SIOCSIFMTU, ifr, "set MTU of");  // the default MTU still works
  }
  ifreq addr = request_for(name);
  set_sockaddr(addr.ifr_addr, net.address);
  if (!if_ioctl(fd, SIOCSIFADDR, addr, "set address of")) return false;
  ifreq mask = request_for(name);
  set_sockaddr(mask.ifr_netmask, netmask_of(net.prefix_length));
  if (!if_ioctl(fd, SIOCSIFNETMASK, mask, "set netmask of")) return false;
  if (!bring_up(fd, name)) return false;
  if (net.gateway) add_default_route(fd, name, *net.gateway);
  log_line(std::string("network: ") + name + " " + format_ipv4(net.address) + "/" +
           std::to_string(net.prefix_length) + (net.gateway ? " via " + format_ipv4(*net.gateway) : std::string()));
  return true;
}

}  // namespace

void configure_network(const BootConfig& config) {
  Socket sock;
  if (sock.fd() < 0) {
    log_errno("network: socket", errno);
    return;
  }
  bring_up(sock.fd(), "lo");
  if (!config.network) return;
  configure_interface(sock.fd(), *config.network);
  // Written even if eth0 failed: the resolver then fails fast on an unreachable
  // nameserver instead of reading an empty file and trying 127.0.0.1.
  if (config.network->dns) write_resolv_conf(*config.network->dns);
}

}  // namespace airlock::guest
