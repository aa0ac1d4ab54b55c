// What every plugin built on the CLI sessions reads the same way: the connection settings of a
// target (transport, port, account, credential references), the host-key settings of the plugin,
// and the engine's class for a session's failure.
#pragma once

#include <outpost/sdk.hpp>
#include <outpost_lib/cli.hpp>
#include <string_view>
#include <vector>

namespace outpost::lib::cli {

// auth for refused credentials and unknown or changed host keys, config for algorithms the
// device cannot meet, timeout, and unavailable for the rest.
outpost_status engine_status(Status s);

// known_hosts (required) and trust_on_first_use (false; logged as a warning when on).
std::vector<outpost_field> host_key_fields();
HostKeyPolicy host_key_policy(const outpost::Config& cfg, outpost::Host host,
                              std::string_view plugin);

// port, user, password, password_ref, key_file, key_passphrase_ref, enable_secret_ref, and
// transport (ssh|telnet) when `telnet` is allowed. `need_user`: the fields say user is required.
std::vector<outpost_field> target_fields(bool telnet);
// The target's connection: its address (an IPv6 literal's brackets dropped), the settings above
// and credential references resolved. Throws outpost::Error(OUTPOST_E_CONFIG) for what does not
// fit (no user, neither password nor key, a port out of range, a reference not found).
Options target_options(const outpost::Target& t, outpost::Host host, bool telnet);

}  // namespace outpost::lib::cli
