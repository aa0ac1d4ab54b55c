// The endpoint mapper's ept_map (C706 appendix O; MS-RPCE 2.2.1.2.5) and the protocol towers
// of ncacn_ip_tcp (C706 appendix L), NDR-encoded by hand: the only NDR this library knows.
#include <outpost_lib/dcerpc.hpp>

#include "wire.hpp"

namespace outpost::lib::dcerpc {

namespace {

constexpr uint8_t kFloorUuid = 0x0d, kFloorRpcCo = 0x0b, kFloorTcp = 0x07, kFloorIp = 0x09;

void floor(wire::Writer& w, std::span<const uint8_t> lhs, std::span<const uint8_t> rhs) {
  w.u16(static_cast<uint16_t>(lhs.size()));
  w.bytes(lhs);
  w.u16(static_cast<uint16_t>(rhs.size()));
  w.bytes(rhs);
}

void uuid_floor(wire::Writer& w, const SyntaxId& s) {
  wire::Writer lhs;
  lhs.u8(kFloorUuid);
  lhs.bytes(s.uuid.to_wire());
  lhs.u16(s.major);
  wire::Writer rhs;
  rhs.u16(s.minor);
  floor(w, lhs.out, rhs.out);
}

}  // namespace

SyntaxId epmapper_syntax() { return {Uuid::parse("e1af8308-5d1f-11c9-91a4-08002b14a0fa"), 3, 0}; }

std::vector<uint8_t> tcp_tower(const SyntaxId& iface) {
  wire::Writer w;
  w.u16(5);
  uuid_floor(w, iface);
  uuid_floor(w, ndr_syntax());
  const uint8_t co = kFloorRpcCo, tcp = kFloorTcp, ip = kFloorIp;
  floor(w, {&co, 1}, std::array<uint8_t, 2>{0, 0});   // minor version 0
  floor(w, {&tcp, 1}, std::array<uint8_t, 2>{0, 0});  // port, big-endian: any
  floor(w, {&ip, 1}, std::array<uint8_t, 4>{0, 0, 0, 0});
  return std::move(w.out);
}

std::vector<uint8_t> ept_map_request(const SyntaxId& iface, uint32_t max_towers) {
  const auto tower = tcp_tower(iface);
  wire::Writer w;
  // Full pointers with referent ids 1 and 2 and a nil object: Windows Server 2003 answers
  // rpc_x_bad_stub_data to anything else (as impacket notes), later versions accept it.
  w.u32(1);                                    // obj
  w.zeros(16);                                 // the nil UUID
  w.u32(2);                                    // map_tower
  w.u32(static_cast<uint32_t>(tower.size()));  // conformance of tower_octet_string
  w.u32(static_cast<uint32_t>(tower.size()));  // tower_length
  w.bytes(tower);
  w.align(4);
  w.zeros(20);  // entry_handle: a nil context handle
  w.u32(max_towers);
  return std::move(w.out);
}

std::vector<uint16_t> ept_map_ports(std::span<const uint8_t> stub) {
  wire::Cursor c{stub, 0, "ept_map response"};
  c.skip(20);  // entry_handle
  const uint32_t num_towers = c.u32();
  const uint32_t max_count = c.u32();
  const uint32_t offset = c.u32();
  const uint32_t actual = c.u32();
  if (actual != num_towers || offset != 0 || actual > max_count || actual > c.left() / 4) {
    wire::malformed("ept_map tower array counts");
  }
  std::vector<bool> present;
  for (uint32_t i = 0; i < actual; ++i) present.push_back(c.u32() != 0);
  std::vector<uint16_t> ports;
  for (uint32_t i = 0; i < actual; ++i) {
    if (!present[i]) continue;
    const uint32_t conformance = c.u32();
    const uint32_t length = c.u32();
    if (conformance != length) wire::malformed("tower length");
    wire::Cursor t{c.take(length), 0, "protocol tower"};
    c.align(4);
    const uint16_t floors = t.u16();
    for (uint16_t f = 0; f < floors; ++f) {
      const auto lhs = t.take(t.u16());
      const auto rhs = t.take(t.u16());
      if (lhs.size() == 1 && lhs[0] == kFloorTcp && rhs.size() == 2) {
        ports.push_back(static_cast<uint16_t>(rhs[0] << 8 | rhs[1]));
      }
    }
  }
  const uint32_t status = c.u32();
  if (status == kEptNotRegistered) {
    throw Error(Status::unavailable, status,
                "the endpoint mapper has no endpoint for the interface (ept_s_not_registered)");
  }
  if (status != 0) {
    const auto name = fault_name(status);
    throw Error(classify_fault(status), status,
                "ept_map failed with status " + std::to_string(status) +
                    (name.empty() ? "" : " (" + std::string(name) + ")"));
  }
  if (ports.empty()) {
    throw Error(Status::unavailable, 0, "the endpoint mapper returned no TCP endpoint");
  }
  return ports;
}

}  // namespace outpost::lib::dcerpc
