// Kerberos for the Windows pollers, through GSSAPI (Debian's MIT Kerberos): a credential from
// a user's password, an initiator context for a service ("HTTP@host"), and the wrap/unwrap of
// WinRM's Kerberos message encryption (MS-WSMV 2.2.9.1: GSS_WrapEx with a separate header).
// The KDC is found as MIT's libraries find it: /etc/krb5.conf, KRB5_CONFIG, or DNS.
//
// acquire() and Context::initial_token() talk to the KDC and BLOCK (the AS and TGS exchanges);
// call them where blocking is allowed (a poller's poll hook), never on an I/O thread. The rest
// is local computation.
#pragma once

#include <outpost/plugin.h>

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::lib::gss {

// what() names the failure in GSSAPI's and Kerberos' words (no secrets); status() its class:
// OUTPOST_E_AUTH for a wrong password, unknown or locked client, expired password;
// OUTPOST_E_CONFIG for a service principal the KDC does not know (no SPN), an unknown realm;
// OUTPOST_E_UNAVAILABLE for a KDC that cannot be reached; OUTPOST_E_INTERNAL otherwise.
class Error : public std::runtime_error {
 public:
  Error(outpost_status status, const std::string& what)
      : std::runtime_error(what), status_(status) {}
  outpost_status status() const { return status_; }

 private:
  outpost_status status_;
};

// A ticket-granting ticket obtained with a password (kept in memory only, never in a file
// cache), shared by every context of that principal until it expires.
class Credential {
 public:
  // principal: "user@REALM" (the realm in capitals, as Active Directory's is).
  static std::shared_ptr<Credential> acquire(const std::string& principal,
                                             const std::string& password);
  ~Credential();
  Credential(const Credential&) = delete;
  Credential& operator=(const Credential&) = delete;
  // Seconds the credential stays valid (0: expired).
  uint32_t lifetime_left() const;
  const std::string& principal() const { return principal_; }

 private:
  friend class Context;
  Credential() = default;
  void* cred_ = nullptr;  // gss_cred_id_t
  std::string principal_;
};

class Context {
 public:
  // service: a host-based service name, "HTTP@srv.corp.example".
  Context(std::shared_ptr<Credential> cred, std::string service);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  // The first token (a Kerberos AP-REQ inside the GSS framing): asks the KDC for a service
  // ticket unless one is cached. Blocking.
  std::vector<uint8_t> initial_token();
  // The server's answer (the AP-REP of mutual authentication). True once established.
  bool step(std::span<const uint8_t> token);
  bool established() const { return established_; }
  // Encrypts `plain` (confidentiality and integrity): the GSS header, then the sealed bytes.
  std::pair<std::string, std::string> wrap(std::string_view plain);
  // Decrypts and verifies; throws Error when the message was altered or is out of sequence.
  std::string unwrap(std::string_view header, std::string_view sealed);

 private:
  std::shared_ptr<Credential> cred_;
  std::string service_;
  void* ctx_ = nullptr;     // gss_ctx_id_t
  void* target_ = nullptr;  // gss_name_t
  bool established_ = false;
};

}  // namespace outpost::lib::gss
