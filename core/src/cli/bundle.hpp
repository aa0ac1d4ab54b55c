// `outpost keygen`, `outpost sign` and `outpost verify`: the management channel's signing
// workflow (docs/management.md). Each parses its own options; exit 0 on success, 1 when the
// work failed (a bundle that does not verify), 2 on a usage error.
#pragma once

namespace outpost::core::cli {

int cmd_keygen(int argc, char** argv);
int cmd_sign(int argc, char** argv);
int cmd_verify(int argc, char** argv);

}  // namespace outpost::core::cli
