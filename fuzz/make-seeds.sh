#!/usr/bin/env bash
# Regenerates fuzz/seeds/ from a genuine bundle made by the real CLI (see
# docs/FUZZING.md). Instance `fz`: 8 events, a trusted checkpoint (size 9),
# a ledger-key rotation, 10 more events; exported (20 records). Keys are
# random, so every run gives new (equally valid) seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
kl() { cargo run --release -q -- "$@"; }

kl ledger generate --data-dir "$work/data" --instance fz --events 8 --threads 1 >/dev/null
kl ledger checkpoint --data-dir "$work/data" --instance fz >"$work/trusted-checkpoint"
kl ledger keys --data-dir "$work/data" --instance fz >"$work/genesis.vkey"
kl ledger rotate-key --data-dir "$work/data" --instance fz >/dev/null
kl ledger generate --data-dir "$work/data" --instance fz --events 10 --threads 1 >/dev/null
kl ledger export --data-dir "$work/data" --instance fz --out "$work/bundle" >/dev/null
kl ledger keys --data-dir "$work/data" --instance fz >"$work/ledger.vkeys"
kl verify --trusted-key "$work/genesis.vkey" --trusted-checkpoint "$work/trusted-checkpoint" "$work/bundle"

seeds=fuzz/seeds
rm -rf "$seeds"
mkdir -p "$seeds"/{bundle,record_frames,verify_stream,checkpoint_note}
cp "$work"/bundle/{records.bin,checkpoint,manifest.json} "$work/trusted-checkpoint" \
  "$work/genesis.vkey" "$seeds/bundle/"
cp "$work/ledger.vkeys" "$seeds/"

python3 - "$seeds" <<'EOF'
import struct, sys
seeds = sys.argv[1]
b = f"{seeds}/bundle"
records = open(f"{b}/records.bin", "rb").read()
note = open(f"{b}/checkpoint", "rb").read()
frames, at = [], 0
while at < len(records):
    n = struct.unpack(">I", records[at:at + 4])[0]
    frames.append(records[at:at + 4 + n + 64])
    at += 4 + n + 64

def stream(name, mode, note, frames):
    # verify_stream layout: mode byte, u16 note length, note, records.bin
    with open(f"{seeds}/verify_stream/{name}", "wb") as f:
        f.write(bytes([mode]) + struct.pack(">H", len(note)) + note + b"".join(frames))

stream("genuine", 0x00, note, frames)
stream("genuine-chunk3-trusted", 0xC3, note, frames)
stream("prefix-9-chunk2", 0x02, note, frames[:9])
stream("duplicated-5", 0x00, note, frames[:6] + frames[5:])
stream("swapped-5-6", 0x04, note, frames[:5] + [frames[6], frames[5]] + frames[7:])
stream("removed-5", 0x40, note, frames[:5] + frames[6:])
stream("prefix-5-trusted", 0x80, note, frames[:5])
open(f"{seeds}/record_frames/genuine.records.bin", "wb").write(records)
open(f"{seeds}/record_frames/prefix-3.records.bin", "wb").write(b"".join(frames[:3]))
EOF

cp "$seeds/bundle/checkpoint" "$seeds/checkpoint_note/genuine.checkpoint"
cp "$seeds/bundle/trusted-checkpoint" "$seeds/checkpoint_note/trusted.checkpoint"
cp "$seeds/ledger.vkeys" "$seeds/checkpoint_note/genuine.keys"
cp tests/vectors/checkpoint/*.note tests/vectors/checkpoint/*.vkey tests/vectors/checkpoint/*.skey \
  tests/vectors/checkpoint/*.checkpoint "$seeds/checkpoint_note/"
# The genuine checkpoint body with 101 short signature lines (one over the limit).
python3 - "$seeds/checkpoint_note" <<'EOF'
import sys
d = sys.argv[1]
body = open(f"{d}/genuine.checkpoint", "rb").read().rsplit(b"\n\n", 1)[0]
line = "\u2014 x AAAAAAA=\n".encode()
open(f"{d}/101-signatures.checkpoint", "wb").write(body + b"\n\n" + line * 101)
EOF
ls -l "$seeds"/*
