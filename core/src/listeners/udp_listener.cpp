#include "listeners/udp_listener.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "engine/instance.hpp"
#include "util/log.hpp"

namespace outpost::core {
namespace {
constexpr std::size_t kMaxDatagram = 65535;

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

bool to_sockaddr(const outpost_sockaddr& in, sockaddr_storage& out, unsigned& len) {
  std::memset(&out, 0, sizeof out);
  if (in.family == 4) {
    auto* a = reinterpret_cast<sockaddr_in*>(&out);
    a->sin_family = AF_INET;
    a->sin_port = htons(in.port);
    std::memcpy(&a->sin_addr, in.addr, 4);
    len = sizeof(sockaddr_in);
    return true;
  }
  if (in.family == 6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&out);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(in.port);
    std::memcpy(&a->sin6_addr, in.addr, 16);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

void from_sockaddr(const sockaddr* in, outpost_sockaddr& out) {
  std::memset(&out, 0, sizeof out);
  if (in->sa_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(in);
    out.family = 4;
    out.port = ntohs(a->sin_port);
    std::memcpy(out.addr, &a->sin_addr, 4);
  } else if (in->sa_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(in);
    // An IPv4 sender on a dual-stack socket is reported as IPv4.
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      out.family = 4;
      std::memcpy(out.addr, reinterpret_cast<const uint8_t*>(&a->sin6_addr) + 12, 4);
    } else {
      out.family = 6;
      std::memcpy(out.addr, &a->sin6_addr, 16);
    }
    out.port = ntohs(a->sin6_port);
  }
}

UdpListener::UdpListener(ListenerSpec spec, PluginInstance* instance, uint64_t socket_id)
    : spec_(std::move(spec)),
      instance_(instance),
      instance_name_(instance != nullptr ? instance->name() : std::string()),
      socket_id_(socket_id) {}

UdpListener::~UdpListener() {
  stop();
  if (fd_ >= 0) ::close(fd_);
}

std::string UdpListener::name() const {
  const bool v6 = spec_.host.find(':') != std::string::npos;
  return "udp://" + (v6 ? "[" + spec_.host + "]" : spec_.host) + ":" +
         std::to_string(bound_port_ ? bound_port_ : spec_.port);
}

bool UdpListener::open(std::string& why) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  in6_addr a6{};
  in_addr a4{};
  int family = 0;
  if (::inet_pton(AF_INET, spec_.host.c_str(), &a4) == 1) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr = a4;
    a->sin_port = htons(spec_.port);
    len = sizeof(sockaddr_in);
    family = AF_INET;
  } else if (::inet_pton(AF_INET6, spec_.host.c_str(), &a6) == 1) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = a6;
    a->sin6_port = htons(spec_.port);
    len = sizeof(sockaddr_in6);
    family = AF_INET6;
  } else {
    why = "not an IP address: " + spec_.host;
    return false;
  }
  fd_ = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    why = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  const int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd_, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  if (family == AF_INET6 && spec_.host == "::") {
    const int zero = 0;  // [::] also takes IPv4, like most collectors
    ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  }
  const int buf = static_cast<int>(std::min<std::size_t>(spec_.recv_buffer, 1u << 30));
  // Beyond net.core.rmem_max only with CAP_NET_ADMIN; fall back to the plain option.
  if (::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) != 0)
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    why = "bind " + name() + ": " + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &blen);
  outpost_sockaddr b{};
  from_sockaddr(reinterpret_cast<sockaddr*>(&bound), b);
  bound_port_ = b.port;
  return true;
}

void UdpListener::start() {
  if (fd_ < 0 || thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void UdpListener::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

outpost_status UdpListener::send(const outpost_sockaddr& to, const uint8_t* data, std::size_t len) {
  sockaddr_storage ss{};
  unsigned sl = 0;
  if (fd_ < 0) return OUTPOST_E_UNAVAILABLE;
  if (!to_sockaddr(to, ss, sl)) return OUTPOST_E_INVALID_ARGUMENT;
  // A socket bound to [::] needs a mapped address to answer an IPv4 sender.
  sockaddr_in6 mapped{};
  if (to.family == 4 && reinterpret_cast<const sockaddr*>(&ss)->sa_family == AF_INET) {
    sockaddr_storage own{};
    socklen_t ol = sizeof own;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&own), &ol);
    if (own.ss_family == AF_INET6) {
      mapped.sin6_family = AF_INET6;
      mapped.sin6_port = htons(to.port);
      uint8_t* b = reinterpret_cast<uint8_t*>(&mapped.sin6_addr);
      b[10] = b[11] = 0xff;
      std::memcpy(b + 12, to.addr, 4);
      std::memcpy(&ss, &mapped, sizeof mapped);
      sl = sizeof mapped;
    }
  }
  const ssize_t n = ::sendto(fd_, data, len, 0, reinterpret_cast<sockaddr*>(&ss), sl);
  return n == static_cast<ssize_t>(len) ? OUTPOST_OK : OUTPOST_E_UNAVAILABLE;
}

void UdpListener::run() {
  const std::size_t batch = std::max<std::size_t>(1, spec_.batch);
  std::vector<uint8_t> buffers(batch * kMaxDatagram);
  std::vector<mmsghdr> msgs(batch);
  std::vector<iovec> iovs(batch);
  std::vector<sockaddr_storage> addrs(batch);
  std::vector<std::array<char, CMSG_SPACE(sizeof(uint32_t))>> controls(batch);
  std::vector<outpost_datagram> dgrams(batch);
  uint32_t last_drops = 0;
  while (!stop_) {
    pollfd pfd{fd_, POLLIN, 0};
    const int pr = ::poll(&pfd, 1, 200);
    if (pr <= 0) continue;
    for (std::size_t i = 0; i < batch; ++i) {
      iovs[i] = {buffers.data() + i * kMaxDatagram, kMaxDatagram};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_name = &addrs[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = controls[i].data();
      msgs[i].msg_hdr.msg_controllen = controls[i].size();
    }
    const int n = ::recvmmsg(fd_, msgs.data(), static_cast<unsigned>(batch), MSG_DONTWAIT, nullptr);
    if (n <= 0) continue;
    const int64_t now = wall_ns();
    uint64_t bytes = 0;
    for (int i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (msgs[k].msg_hdr.msg_flags & MSG_TRUNC) truncated_++;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[k].msg_hdr); c != nullptr;
           c = CMSG_NXTHDR(&msgs[k].msg_hdr, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          uint32_t drops = 0;
          std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
          if (drops != last_drops) kernel_drops_ += drops - last_drops;  // cumulative per socket
          last_drops = drops;
        }
      }
      dgrams[k].data = buffers.data() + k * kMaxDatagram;
      dgrams[k].len = msgs[k].msg_len;
      from_sockaddr(reinterpret_cast<sockaddr*>(&addrs[k]), dgrams[k].source);
      dgrams[k].socket_id = socket_id_;
      dgrams[k].recv_time_ns = now;
      bytes += msgs[k].msg_len;
    }
    datagrams_ += static_cast<uint64_t>(n);
    bytes_ += bytes;
    std::lock_guard g(dispatch_mu_);
    if (instance_->call_receive(dgrams.data(), static_cast<std::size_t>(n)) != OUTPOST_OK)
      hook_failures_++;
  }
}

PluginInstance* UdpListener::instance() const {
  std::lock_guard g(dispatch_mu_);
  return instance_;
}

void UdpListener::retarget(PluginInstance* instance) {
  std::lock_guard g(dispatch_mu_);
  instance_ = instance;
  std::lock_guard n(name_mu_);
  instance_name_ = instance->name();
}

std::string UdpListener::instance_name() const {
  std::lock_guard g(name_mu_);
  return instance_name_;
}

bool UdpListener::same_socket(const ListenerSpec& s) const {
  return s.host == spec_.host && s.port == spec_.port && s.recv_buffer == spec_.recv_buffer &&
         s.batch == spec_.batch;
}

ListenerStats UdpListener::stats() const {
  return ListenerStats{datagrams_.load(), bytes_.load(), kernel_drops_.load(), truncated_.load(),
                       hook_failures_.load()};
}

}  // namespace outpost::core
