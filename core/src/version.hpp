#pragma once

namespace outpost::core {
const char* version();
const char* build_type();
}  // namespace outpost::core
