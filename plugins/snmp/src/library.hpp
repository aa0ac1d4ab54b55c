// net-snmp as a process-wide library: its headers (in the order they need), the one lock every
// call into it holds, its logging, and the SNMPv3 key and USM-user bookkeeping it leaves to us.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <outpost/sdk.hpp>
#include <string>

// net-snmp last, its configuration header first: its headers define many macros (even
// max_repetitions, as errindex).
// clang-format off
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/large_fd_set.h>
// clang-format on

namespace outpost::snmp::netsnmp {

// net-snmp keeps process-wide state (the USM user list, the engine time cache, request ids),
// so every call into it, from any instance's I/O thread, holds this lock. Recursive: a hook
// that holds it may end a job, whose on_end closes the session under it again.
std::recursive_mutex& lib_mutex();

// Once per process: no snmp.conf, no persistent state, no MIB files; net-snmp's own log lines
// go to a registered host's debug log.
void init_library();
void add_log_host(const void* owner, outpost::Host host);
void remove_log_host(const void* owner);

// Password-to-key (RFC 3414 A.2) hashes a megabyte; done once per protocol and password, not
// per device and poll. Throws outpost::Error(OUTPOST_E_CONFIG) for a password net-snmp refuses.
std::string localizable_key(const oid* proto, std::size_t proto_len, const std::string& password,
                            const char* what);

// net-snmp's USM user list is keyed by (engine ID, user name) alone, so two monitors of the same
// engine and user with different passwords would share one set of keys. Each (engine, user) is
// therefore claimed with the fingerprint of its keys; a poll with other keys waits until the
// holders are done, then replaces the list's entry. Guarded by lib_mutex().
struct UsmClaim {
  std::string fingerprint;
  int holders = 0;
};
std::map<std::string, UsmClaim>& usm_claims();

// "connection refused": strerror, lower-cased first letter, for details.
std::string errno_text(int err);

}  // namespace outpost::snmp::netsnmp
