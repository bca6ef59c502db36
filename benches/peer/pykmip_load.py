#!/usr/bin/env python3
"""Load generator for a running PyKMIP server: KMIP Encrypt of 32 bytes.

    pykmip_load.py --cert C --key K --ca CA [--host 127.0.0.1] [--port 5696]
                   [--conns 64] [--procs 2] [--secs 8] [--policy NAME]

Starts nothing itself (scripts/bench-peer starts the server). Creates one
AES-256 key (usage mask Encrypt + Decrypt, then Activate), then opens
--conns persistent TLS connections (one PyKMIP ProxyKmipClient each), spread
over --procs client processes with one thread per connection, like
`wrk -t2 -c64`. Once every connection is open, each one runs for --secs:
KMIP Encrypt (AES, CBC, PKCS5, IV chosen by the server) of a fresh random
32-byte plaintext, one request in flight per connection.

Prints one line in the format benches/rest_load.rs prints (req/s counts the
successful requests; `other` is the number of failed ones), and exits
non-zero if any request failed or any connection could not be opened.

CBC rather than GCM: ProxyKmipClient.encrypt returns the ciphertext and IV
but drops the GCM tag, so a GCM "encrypt" through it would not be usable.
"""

import argparse
import logging
import multiprocessing
import os
import queue
import sys
import threading
import time

from kmip.core import enums
from kmip.pie import client as kmip_client
from kmip.pie import exceptions as pie_exceptions

PLAINTEXT_LEN = 32
# PKCS5 always pads: 32 bytes become three AES blocks.
CIPHERTEXT_LEN = 48
PARAMS = {
    "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
    "block_cipher_mode": enums.BlockCipherMode.CBC,
    "padding_method": enums.PaddingMethod.PKCS5,
}
# How long to wait for every connection to be open before giving up.
OPEN_TIMEOUT_S = 120


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5696)
    p.add_argument("--cert", required=True, help="client certificate (PEM)")
    p.add_argument("--key", required=True, help="client private key (PEM)")
    p.add_argument("--ca", required=True, help="CA that signed the server")
    p.add_argument("--conns", type=int, default=64)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--secs", type=float, default=8.0)
    p.add_argument(
        "--policy",
        default=None,
        help="operation policy name for the key (server default if unset)",
    )
    a = p.parse_args()
    if a.conns < 1 or a.procs < 1 or a.secs <= 0:
        p.error("--conns and --procs must be >= 1 and --secs > 0")
    a.procs = min(a.procs, a.conns)
    return a


def new_client(a):
    # Every setting is given here, so no pykmip.conf is read; ssl_version
    # stays negotiable and the server pins TLS 1.2 (auth_suite = TLS1.2).
    return kmip_client.ProxyKmipClient(
        hostname=a.host,
        port=a.port,
        cert=a.cert,
        key=a.key,
        ca=a.ca,
        ssl_version="PROTOCOL_SSLv23",
        config_file=None,
    )


def create_key(a):
    c = new_client(a)
    c.open()
    # (name, protocol, bits) of what this connection negotiated.
    cipher = c.proxy.socket.cipher()
    try:
        uid = c.create(
            enums.CryptographicAlgorithm.AES,
            256,
            operation_policy_name=a.policy,
            name="keyledger-bench",
            cryptographic_usage_mask=[
                enums.CryptographicUsageMask.ENCRYPT,
                enums.CryptographicUsageMask.DECRYPT,
            ],
        )
        c.activate(uid)
        # One checked round trip before the clock starts: the key encrypts
        # and decrypts back to the plaintext.
        data = os.urandom(PLAINTEXT_LEN)
        ct, iv = c.encrypt(data, uid=uid, cryptographic_parameters=PARAMS)
        back = c.decrypt(
            ct, uid=uid, cryptographic_parameters=PARAMS, iv_counter_nonce=iv
        )
        if back != data:
            raise RuntimeError("encrypt/decrypt round trip did not match")
    finally:
        c.close()
    return uid, cipher


class Conn:
    """One connection's counters, filled by its own thread."""

    def __init__(self):
        self.ok = 0
        self.failed = 0
        self.latencies_us = []
        self.errors = []
        self.last_done = 0.0


def drive(client, uid, times, conn):
    start, end = times
    now = time.monotonic()
    if now < start:
        time.sleep(start - now)
    while time.monotonic() < end:
        data = os.urandom(PLAINTEXT_LEN)
        sent = time.perf_counter()
        try:
            ct, iv = client.encrypt(
                data, uid=uid, cryptographic_parameters=PARAMS
            )
        except pie_exceptions.KmipOperationFailure as e:
            # The server answered with a failure: the connection is intact.
            conn.failed += 1
            conn.errors.append("KMIP failure: {}".format(e))
            continue
        except Exception as e:  # a broken connection
            conn.failed += 1
            conn.errors.append("{}: {}".format(type(e).__name__, e))
            break
        us = int((time.perf_counter() - sent) * 1e6)
        if len(ct) == CIPHERTEXT_LEN and iv is not None and len(iv) == 16:
            conn.ok += 1
            conn.latencies_us.append(us)
        else:
            conn.failed += 1
            conn.errors.append(
                "unexpected answer: {} ciphertext bytes, iv {!r}".format(
                    len(ct), iv
                )
            )
    conn.last_done = time.monotonic()


def worker(a, uid, n, ready, go, times, results):
    """One client process: n connections, one thread each."""
    logging.disable(logging.WARNING)
    clients = []
    conns = []
    errors = []
    for _ in range(n):
        c = new_client(a)
        try:
            c.open()
        except Exception as e:
            errors.append("open: {}: {}".format(type(e).__name__, e))
            continue
        clients.append(c)
        conns.append(Conn())
    ready.put(len(clients))
    if not go.wait(OPEN_TIMEOUT_S + 30) or times[0] == 0.0:
        for c in clients:
            c.close()
        results.put((0, len(errors) or 1, [], errors + ["never started"], 0.0))
        return
    threads = [
        threading.Thread(target=drive, args=(c, uid, (times[0], times[1]), s))
        for c, s in zip(clients, conns)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    lat = []
    for s in conns:
        lat.extend(s.latencies_us)
        errors.extend(s.errors)
    results.put(
        (
            sum(s.ok for s in conns),
            sum(s.failed for s in conns) + (n - len(clients)),
            lat,
            errors,
            max((s.last_done for s in conns), default=0.0),
        )
    )


def pct(sorted_us, p):
    if not sorted_us:
        return float("nan")
    # Same index rule as rest_load (Rust's f64::round: half away from zero).
    i = int((len(sorted_us) - 1) * p + 0.5)
    return sorted_us[i] / 1000.0


def main():
    a = parse_args()
    logging.disable(logging.WARNING)
    uid, cipher = create_key(a)
    print(
        "pykmip_load: {} connections on {} client processes, {:g} s, "
        "AES-256 key {}, KMIP Encrypt of {} random bytes (CBC, PKCS5), "
        "{} {}".format(
            a.conns, a.procs, a.secs, uid, PLAINTEXT_LEN, cipher[1], cipher[0]
        ),
        flush=True,
    )

    ctx = multiprocessing.get_context("fork")
    ready = ctx.Queue()
    results = ctx.Queue()
    go = ctx.Event()
    times = ctx.Array("d", [0.0, 0.0])
    per_proc = [
        a.conns // a.procs + (1 if i < a.conns % a.procs else 0)
        for i in range(a.procs)
    ]
    procs = [
        ctx.Process(
            target=worker, args=(a, uid, n, ready, go, times, results)
        )
        for n in per_proc
    ]
    for p in procs:
        p.start()

    opened = 0
    deadline = time.monotonic() + OPEN_TIMEOUT_S
    try:
        for _ in procs:
            left = deadline - time.monotonic()
            opened += ready.get(timeout=max(left, 0.1))
    except queue.Empty:
        # times stays 0: the workers close their connections and return.
        go.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
        sys.exit(
            "pykmip_load: connections not open after {} s".format(
                OPEN_TIMEOUT_S
            )
        )
    start = time.monotonic() + 0.3
    times[0] = start
    times[1] = start + a.secs
    go.set()

    ok = failed = 0
    lat = []
    errors = []
    last_done = start
    for _ in procs:
        # A request in flight at the end may take up to the client's 30 s
        # socket timeout; a worker that died never answers.
        try:
            r = results.get(timeout=a.secs + 60)
        except queue.Empty:
            for p in procs:
                p.terminate()
            sys.exit("pykmip_load: a client process did not report")
        r_ok, r_failed, r_lat, r_errors, r_done = r
        ok += r_ok
        failed += r_failed
        lat.extend(r_lat)
        errors.extend(r_errors)
        last_done = max(last_done, r_done)
    for p in procs:
        p.join()
    lat.sort()
    elapsed = last_done - start
    rate = ok / elapsed if elapsed > 0 else 0.0

    print(
        "{:<10} {:>10.0f} req/s  ok {:>8}  other {:>3}  p50 {:>6.2f} ms  "
        "p90 {:>6.2f} ms  p99 {:>6.2f} ms  max {:>7.2f} ms".format(
            "encrypt",
            rate,
            ok,
            failed,
            pct(lat, 0.50),
            pct(lat, 0.90),
            pct(lat, 0.99),
            lat[-1] / 1000.0 if lat else float("nan"),
        )
    )
    print(
        "connections open {} of {}; failed requests {}".format(
            opened, a.conns, failed
        )
    )
    if errors:
        distinct = sorted(set(errors))
        print("errors ({} distinct):".format(len(distinct)), file=sys.stderr)
        for e in distinct[:10]:
            print("  " + e, file=sys.stderr)
    if failed or opened != a.conns or ok == 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
