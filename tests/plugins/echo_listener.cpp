// A listener for the core's socket tests: every datagram becomes an event (kind "datagram",
// message = payload, source = sender address); a payload starting with "ack?" is answered with
// "ack!" + the rest on the socket it came from.
#include <arpa/inet.h>

#include <outpost/sdk.hpp>

namespace {
class EchoListener : public outpost::Listener {
 public:
  EchoListener(outpost::Host host, const outpost::Config&) : host_(host) {}
  void receive(std::span<const outpost_datagram> datagrams) override {
    std::vector<outpost::Event> events;
    for (const auto& d : datagrams) {
      std::string payload(reinterpret_cast<const char*>(d.data), d.len);
      char addr[64] = {};
      ::inet_ntop(d.source.family == 6 ? AF_INET6 : AF_INET, d.source.addr, addr, sizeof addr);
      events.push_back({"datagram",
                        addr,
                        payload,
                        OUTPOST_SEV_INFO,
                        {{"port", std::to_string(d.source.port)}},
                        d.recv_time_ns});
      if (payload.rfind("ack?", 0) == 0) {
        const std::string answer = "ack!" + payload.substr(4);
        host_.reply(d.socket_id, d.source,
                    std::span(reinterpret_cast<const uint8_t*>(answer.data()), answer.size()));
      }
    }
    host_.emit({}, events);
  }

 private:
  outpost::Host host_;
};
}  // namespace

OUTPOST_PLUGIN(EchoListener, "echo_listener", "0.0.1", "test listener: datagrams become events")
