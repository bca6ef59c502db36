#!/usr/bin/env python3
"""Writes valid.json and invalid.json: keyledger wrapped-DEK ciphertext
vectors, built from the byte layout in docs/KEYS.md independently of the Rust
code, with the AEAD step done by pyca/cryptography's AES-256-GCM.

Deterministic: fixed keys, nonces and DEKs. Run from this directory:
    python3 generate.py
"""
import base64
import json
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def header(instance, key_id, version):
    i, k = instance.encode(), key_id.encode()
    return b"KLW\x01" + struct.pack(">H", len(i)) + i + struct.pack(">H", len(k)) + k + struct.pack(">I", version)


def aad(hdr, caller):
    out = hdr
    for entry in caller:
        e = entry.encode()
        out += struct.pack(">I", len(e)) + e
    return out


def encode(hdr, sealed):
    return hdr + struct.pack(">I", len(sealed)) + sealed


CASES = [
    ("minimal", "a", "k", 1, [], bytes(range(32)), bytes(12), bytes(32)),
    ("uuid key, version 3, two AAD entries", "acme-prod", "02fd6835-6001-4482-a892-13bd2085f75d", 3,
     ["tenant=42", "bucket/photos"], bytes([0x5A] * 32), bytes(range(12)), bytes(range(100, 132))),
    ("empty AAD entry counts", "acme", "key-1", 7, [""], bytes([1] * 32), bytes([2] * 12), b"sixteen byte dek"),
    ("max ids, max version", "i" * 64, "K" * 64, 0xFFFFFFFF, ["x" * 255],
     bytes([0xFF] * 32), bytes([0xEE] * 12), bytes(range(64))),
]

valid = []
for name, inst, kid, ver, caller, key, nonce, dek in CASES:
    hdr = header(inst, kid, ver)
    a = aad(hdr, caller)
    sealed = nonce + AESGCM(key).encrypt(nonce, dek, a)
    enc = encode(hdr, sealed)
    valid.append({
        "name": name, "instance": inst, "key_id": kid, "key_version": ver,
        "caller_aad": caller, "key_hex": key.hex(), "dek_hex": dek.hex(),
        "sealed_hex": sealed.hex(), "header_hex": hdr.hex(), "aad_hex": a.hex(),
        "encoded_hex": enc.hex(), "base64": base64.b64encode(enc).decode(),
    })

good = bytes.fromhex(valid[1]["encoded_hex"])
hdr1 = header("acme", "k", 1)
sealed28 = bytes(28)
invalid = [
    ("empty", b"", "Truncated"),
    ("wrong magic", b"KLX" + good[3:], "BadMagic"),
    ("format version 2", good[:3] + b"\x02" + good[4:], "UnsupportedVersion"),
    ("format version 0", good[:3] + b"\x00" + good[4:], "UnsupportedVersion"),
    ("trailing byte", good + b"\x00", "TrailingBytes"),
    ("truncated body", good[:-1], "Truncated"),
    ("header only", hdr1, "Truncated"),
    ("empty instance", b"KLW\x01\x00\x00" + good[4:], "BadLength"),
    ("instance of 65 bytes", b"KLW\x01\x00\x41" + b"i" * 65 + struct.pack(">H", 1) + b"k" + struct.pack(">I", 1) + struct.pack(">I", 28) + sealed28, "BadLength"),
    ("absurd instance length", b"KLW\x01\xff\xff" + b"i" * 10, "BadLength"),
    ("instance with slash", header("a/b", "k", 1) + struct.pack(">I", 28) + sealed28, "BadField"),
    ("key id with dot dot", header("acme", "..", 1) + struct.pack(">I", 28) + sealed28, "BadField"),
    ("key id not utf-8", header("acme", "k", 1).replace(b"\x00\x01k", b"\x00\x01\xff") + struct.pack(">I", 28) + sealed28, "BadField"),
    ("key version 0", header("acme", "k", 0) + struct.pack(">I", 28) + sealed28, "BadField"),
    ("sealed shorter than nonce and tag", hdr1 + struct.pack(">I", 27) + bytes(27), "BadLength"),
    ("absurd sealed length", hdr1 + struct.pack(">I", 0xFFFFFFFF) + sealed28, "BadLength"),
    ("sealed length larger than data", hdr1 + struct.pack(">I", 40) + sealed28, "Truncated"),
]

with open("valid.json", "w") as f:
    json.dump(valid, f, indent=2)
    f.write("\n")
with open("invalid.json", "w") as f:
    json.dump([{"name": n, "hex": b.hex(), "error": e} for n, b, e in invalid], f, indent=2)
    f.write("\n")
