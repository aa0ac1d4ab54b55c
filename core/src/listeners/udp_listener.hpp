// A UDP socket the core binds and owns. A thread receives datagrams in batches (recvmmsg) and
// hands each batch to the listener plugin's receive hook; the plugin answers through the host's
// reply() on the same socket. Kernel drops (SO_RXQ_OVFL) are counted.
#pragma once

#include <outpost/plugin.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "config/config.hpp"

struct sockaddr;
struct sockaddr_storage;

namespace outpost::core {

class PluginInstance;

struct ListenerStats {
  uint64_t datagrams = 0;
  uint64_t bytes = 0;
  uint64_t kernel_drops = 0;   // the socket's receive queue overflowed
  uint64_t truncated = 0;      // larger than the receive buffer
  uint64_t hook_failures = 0;  // batches whose receive hook returned an error
};

class UdpListener {
 public:
  UdpListener(ListenerSpec spec, PluginInstance* instance, uint64_t socket_id);
  ~UdpListener();
  UdpListener(const UdpListener&) = delete;
  UdpListener& operator=(const UdpListener&) = delete;

  bool open(std::string& why);  // binds; false with a reason
  void start();
  void stop();  // joins the receive thread: no receive() call after this returns

  outpost_status send(const outpost_sockaddr& to, const uint8_t* data, std::size_t len);

  uint64_t socket_id() const { return socket_id_; }
  uint16_t bound_port() const { return bound_port_; }
  const ListenerSpec& spec() const { return spec_; }
  PluginInstance* instance() const;   // waits for a batch being handed over
  std::string instance_name() const;  // never waits on the receive path
  // Hands the socket to another instance (a reload changed its settings) without closing it:
  // no datagram is lost. When this returns, the old instance gets no more receive() calls.
  void retarget(PluginInstance* instance);
  // The same socket as `spec` asks for: a reload keeps it bound.
  bool same_socket(const ListenerSpec& spec) const;
  std::string name() const;  // "udp://host:port"
  ListenerStats stats() const;

 private:
  void run();

  ListenerSpec spec_;
  mutable std::mutex dispatch_mu_;  // held while a batch is handed over, and to retarget
  PluginInstance* instance_;
  mutable std::mutex name_mu_;  // a leaf lock: taken under the engine's listener lock
  std::string instance_name_;
  uint64_t socket_id_;
  int fd_ = -1;
  uint16_t bound_port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::atomic<uint64_t> datagrams_{0}, bytes_{0}, kernel_drops_{0}, truncated_{0},
      hook_failures_{0};
};

// Conversions between the ABI's address form and the OS's.
bool to_sockaddr(const outpost_sockaddr& in, ::sockaddr_storage& out, unsigned& len);
void from_sockaddr(const ::sockaddr* in, outpost_sockaddr& out);

}  // namespace outpost::core
