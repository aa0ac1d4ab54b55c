#!/usr/bin/env bash
# Seeds for fuzz_store_block: a valid block file of three one-point chunks, and a bare chunk.
python3 - "$1" <<'PY'
import os, struct, sys, zlib
def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7f) | 0x80]); v >>= 7
    return out + bytes([v])
def chunk(t_rel, value):  # count 1 (not shared), zigzag first time, the value's 64 bits MSB first
    return varint(1 << 1) + varint(t_rel << 1) + struct.pack(">d", value)
chunks = [(1, chunk(5, 1.5)), (7, chunk(60, -2.0)), (9, chunk(0, 1e9))]
data, index, off = b"", b"", 64
for s, c in chunks:
    index += struct.pack("<IIQI", s, 1, off, zlib.crc32(c)); data += c; off += len(c)
h = b"OPSTBLK1" + struct.pack("<IIqqQII", 1, 2, 3600 * 10**9, 3600 * 10**9, 7, len(chunks), 1)
h += struct.pack("<QI", off, zlib.crc32(index))
h += struct.pack("<I", zlib.crc32(h))
open(os.path.join(sys.argv[1], "block.blk"), "wb").write(h + data + index)
open(os.path.join(sys.argv[1], "chunk"), "wb").write(b"\x00" + chunk(3, 42.0))
PY
