// Arbitrary bytes as what a DCE/RPC server sends: an Error, never a crash, never unbounded
// memory. The first byte picks the entry point; the Association cases first go through a
// handshake with a fixed, valid NTLM challenge so that the fuzzer reaches the sealed path.
#include <cstddef>
#include <cstdint>
#include <outpost_lib/dcerpc.hpp>
#include <vector>

#include "wire.hpp"

namespace rpc = outpost::lib::dcerpc;
using Bytes = std::vector<uint8_t>;

namespace {

const rpc::SyntaxId kIface{rpc::Uuid::parse("12345778-1234-abcd-ef00-0123456789ac"), 1, 0};

Bytes challenge() {
  Bytes name{'T', 0, 'P', 0};
  rpc::wire::Writer info;
  info.u16(2);
  info.u16(static_cast<uint16_t>(name.size()));
  info.bytes(name);
  info.u32(0);
  rpc::wire::Writer w;
  w.bytes(Bytes{'N', 'T', 'L', 'M', 'S', 'S', 'P', 0});
  w.u32(2);
  w.u16(static_cast<uint16_t>(name.size()));
  w.u16(static_cast<uint16_t>(name.size()));
  w.u32(56);
  w.u32(0xe28a8235);
  w.bytes(Bytes{1, 2, 3, 4, 5, 6, 7, 8});
  w.zeros(8);
  w.u16(static_cast<uint16_t>(info.out.size()));
  w.u16(static_cast<uint16_t>(info.out.size()));
  w.u32(static_cast<uint32_t>(56 + name.size()));
  w.zeros(8);
  w.bytes(name);
  w.bytes(info.out);
  return w.out;
}

rpc::Association bound(rpc::AuthLevel level) {
  rpc::AssociationOptions o;
  o.ntlm_client_challenge = std::array<uint8_t, 8>{};
  o.ntlm_exported_session_key = std::array<uint8_t, 16>{};
  o.ntlm_timestamp = 0;
  auto a = level == rpc::AuthLevel::none
               ? rpc::Association(level, std::nullopt, o)
               : rpc::Association(level, outpost::lib::ntlm::Credentials{"u", "", "p"}, o);
  const Bytes bind = a.bind(kIface);
  rpc::Pdu ack;
  ack.type = rpc::PduType::bind_ack;
  ack.call_id = rpc::decode(bind).call_id;
  ack.body = rpc::BindAck{5840, 5840, 1, "135", {{0, 0, rpc::ndr_syntax()}}};
  if (level != rpc::AuthLevel::none) {
    ack.auth = rpc::AuthVerifier{10, static_cast<uint8_t>(level), 0, 0, challenge()};
  }
  (void)a.on_bind_ack(rpc::encode(ack));
  return a;
}

// Makes the header plausible (version, representation, frag_length) so that the fuzzer spends
// its time past it; the raw cases cover the header itself.
Bytes plausible(std::span<const uint8_t> in, uint32_t call_id) {
  Bytes b(in.begin(), in.end());
  if (b.size() < rpc::kHeaderSize || b.size() > 0xffff) return b;
  b[0] = 5;
  b[1] = 0;
  b[4] = 0x10;
  b[5] = 0;
  b[8] = static_cast<uint8_t>(b.size());
  b[9] = static_cast<uint8_t>(b.size() >> 8);
  if (b[10] == 0xff) {  // sometimes a signature-sized verifier
    b[10] = 16;
    b[11] = 0;
  }
  if (b[12] != 0xff) {  // mostly the call's own id
    for (int i = 0; i < 4; ++i)
      b[12 + static_cast<std::size_t>(i)] = static_cast<uint8_t>(call_id >> (8 * i));
  }
  return b;
}

// Pieces of `in`, each prefixed by a 2-byte length.
std::vector<std::span<const uint8_t>> pieces(std::span<const uint8_t> in) {
  std::vector<std::span<const uint8_t>> out;
  while (in.size() >= 2) {
    const std::size_t n =
        std::min<std::size_t>(static_cast<std::size_t>(in[0] | in[1] << 8), in.size() - 2);
    out.push_back(in.subspan(2, n));
    in = in.subspan(2 + n);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const uint8_t> in(data + 1, size - 1);
  try {
    switch (data[0] % 6) {
      case 0: {  // a stream in chunks, each PDU decoded and written back
        rpc::Reader r;
        for (auto piece : pieces(in)) {
          r.feed(piece);
          while (auto pdu = r.next()) (void)rpc::encode(rpc::decode(*pdu));
        }
        break;
      }
      case 1:
        (void)rpc::encode(rpc::decode(in));
        break;
      case 2:
        (void)rpc::ept_map_ports(in);
        break;
      case 3: {  // bind_ack answers (the NTLM challenge inside included)
        rpc::Association a(rpc::AuthLevel::privacy, outpost::lib::ntlm::Credentials{"u", "", "p"});
        (void)a.on_bind_ack(plausible(in, rpc::decode(a.bind(kIface)).call_id));
        break;
      }
      default: {  // responses at none, integrity or privacy, several calls in a row
        static constexpr rpc::AuthLevel kLevels[] = {
            rpc::AuthLevel::none, rpc::AuthLevel::integrity, rpc::AuthLevel::privacy};
        auto a = bound(kLevels[data[0] % 6 - 3]);
        uint32_t call_id = 1;  // the bind's
        for (auto piece : pieces(in)) {
          if (!a.bound()) break;
          try {  // refused while a fragmented answer is still coming
            (void)a.request(1, piece.first(std::min<std::size_t>(piece.size(), 8)));
            ++call_id;
          } catch (const rpc::Error&) {
          }
          try {
            (void)a.on_response(plausible(piece, call_id));
          } catch (const rpc::Error&) {
          }
        }
        break;
      }
    }
  } catch (const rpc::Error&) {
  }
  return 0;
}
