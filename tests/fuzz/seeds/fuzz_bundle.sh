#!/usr/bin/env bash
# Seeds for fuzz_bundle: a config and a plugin bundle laid out as docs/management.md says (the
# signature is zeros: the parser does not check it).
python3 - "$1" <<'PY'
import hashlib, os, struct, sys
def bundle(manifest, payload):
    m = manifest.encode()
    return b"OPBUNDLE" + struct.pack(">HHIQ", 1, 0, len(m), len(payload)) + m + payload + bytes(64)
def manifest(kind, payload, extra=""):
    return ("kind=%s\n%sserial=3\ncreated=1700000000\npayload_sha256=%s\nkey_id=0123456789abcdef\n"
            % (kind, extra, hashlib.sha256(payload).hexdigest()))
cfg = b"engine: {id: remote}\n"
lib = b"\x7fELF" + bytes(60)
out = sys.argv[1]
open(os.path.join(out, "config.bundle"), "wb").write(bundle(manifest("config", cfg), cfg))
open(os.path.join(out, "plugin.bundle"), "wb").write(
    bundle(manifest("plugin", lib, "name=tcp\nversion=1.2.0\n"), lib))
PY
