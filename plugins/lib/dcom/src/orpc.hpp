// The pieces every ORPC stub shares: ORPCTHIS and ORPCTHAT (MS-DCOM 2.2.13), interface pointers
// (MInterfacePointer, 2.2.14) and the DUALSTRINGARRAY of string bindings (2.2.19).
#pragma once

#include <cstdint>
#include <optional>
#include <outpost_lib/dcom.hpp>
#include <span>
#include <vector>

#include "ndr.hpp"

namespace outpost::lib::dcom::orpc {

inline constexpr uint16_t kComMajor = 5;
inline constexpr uint16_t kComMinor = 7;
inline constexpr uint32_t kObjrefSignature = 0x574f454d;  // "MEOW"

// ORPCTHIS with version 5.7, flags 0 and no extensions.
void write_orpcthis(ndr::Writer& w, const Uuid& causality);
// Reads ORPCTHAT and walks its ORPC_EXTENT_ARRAY, if any, to its end.
void read_orpcthat(ndr::Reader& r);

// An MInterfacePointer (conformance, ulCntData, abData) whose unique pointer was already written.
void write_interface_pointer(ndr::Writer& w, std::span<const uint8_t> objref);
// The abData of an MInterfacePointer whose non-NULL unique pointer was just read.
std::span<const uint8_t> read_interface_pointer(ndr::Reader& r);
// A [unique] interface pointer: nullopt for NULL, else its abData.
std::optional<std::span<const uint8_t>> read_unique_interface_pointer(ndr::Reader& r);

// The string bindings of a DUALSTRINGARRAY's entries (the security bindings are skipped).
std::vector<StringBinding> string_bindings(std::span<const uint16_t> entries,
                                           uint16_t security_offset);
// The entries of a DUALSTRINGARRAY that is not NDR (inside an OBJREF): counts, then entries.
std::vector<StringBinding> read_packed_dual_string_array(ndr::Reader& r);

// The final HRESULT of a stub (4-aligned).
uint32_t read_hresult(ndr::Reader& r);

}  // namespace outpost::lib::dcom::orpc
