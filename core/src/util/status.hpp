// Short names of the ABI's status codes, as logs, events and the CLI print them.
#pragma once

#include <outpost/plugin.h>

namespace outpost::core {

inline const char* status_name(outpost_status s) {
  switch (s) {
    case OUTPOST_OK:
      return "ok";
    case OUTPOST_E_UNAVAILABLE:
      return "unavailable";
    case OUTPOST_E_TIMEOUT:
      return "timeout";
    case OUTPOST_E_BUSY:
      return "busy";
    case OUTPOST_E_OVERLOADED:
      return "overloaded";
    case OUTPOST_E_AUTH:
      return "auth";
    case OUTPOST_E_CONFIG:
      return "config";
    case OUTPOST_E_NOT_FOUND:
      return "not_found";
    case OUTPOST_E_PERMISSION:
      return "permission";
    case OUTPOST_E_INTERNAL:
      return "internal";
    case OUTPOST_E_INVALID_ARGUMENT:
      return "invalid_argument";
    case OUTPOST_E_UNSUPPORTED:
      return "unsupported";
    default:
      return "other";
  }
}

// Statuses that say the engine or the plugin had no capacity, not that the device failed: the
// target is skipped, its availability stays as it was.
inline bool is_skip_status(outpost_status s) {
  return s == OUTPOST_E_OVERLOADED || s == OUTPOST_E_BUSY;
}

}  // namespace outpost::core
