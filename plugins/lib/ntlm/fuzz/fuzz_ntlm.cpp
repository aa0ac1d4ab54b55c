// Arbitrary bytes as a server's CHALLENGE_MESSAGE (parsed alone and answered by a Client), and
// as sealed and signed messages with their signatures: an Error or false, never a crash.
#include <cstddef>
#include <cstdint>
#include <outpost_lib/ntlm.hpp>
#include <vector>

namespace ntlm = outpost::lib::ntlm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const uint8_t> in(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      try {
        (void)ntlm::parse_challenge(in);
      } catch (const ntlm::Error&) {
      }
      ntlm::ClientOptions o;
      o.client_challenge = std::array<uint8_t, 8>{1, 2, 3, 4, 5, 6, 7, 8};
      o.exported_session_key = std::array<uint8_t, 16>{};
      o.timestamp = 0;
      o.target_spn = "HTTP/host.example";
      ntlm::Client c({"user", "DOMAIN", "password"}, o);
      c.negotiate();
      try {
        (void)c.authenticate(in);
        (void)c.session();
      } catch (const ntlm::Error&) {
      }
      break;
    }
    case 1: {
      // Several messages in a row: [len][signature 16][message len], WinRM style.
      static const std::array<uint8_t, 16> key{};
      auto s = ntlm::Session::client(key);
      std::size_t at = 0;
      while (at < in.size()) {
        const std::size_t n = std::min<std::size_t>(in[at], in.size() - at - 1);
        std::vector<uint8_t> chunk(in.begin() + static_cast<std::ptrdiff_t>(at + 1),
                                   in.begin() + static_cast<std::ptrdiff_t>(at + 1 + n));
        at += 1 + n;
        const std::size_t sig = std::min<std::size_t>(16, chunk.size());
        std::span<uint8_t> msg = std::span(chunk).subspan(sig);
        (void)s.unseal(msg, msg, std::span(chunk).first(sig));
        (void)s.verify(msg, std::span(chunk).first(sig));
      }
      break;
    }
    case 2: {
      // DCE/RPC style: a stub somewhere inside the signed PDU.
      if (in.size() < 18) return 0;
      static const std::array<uint8_t, 16> key{7};
      auto s = ntlm::Session::server(key);
      std::vector<uint8_t> pdu(in.begin() + 18, in.end());
      const std::size_t off = pdu.empty() ? 0 : in[0] % (pdu.size() + 1);
      const std::size_t len = in[1] % (pdu.size() - off + 1);
      (void)s.unseal(std::span(pdu).subspan(off, len), pdu, in.subspan(2, 16));
      break;
    }
  }
  return 0;
}
