#!/usr/bin/env python3
"""A Splunk HTTP Event Collector stand-in for the sink tests.

Answers POST /services/collector/event as Splunk HEC does: 401
{"text":"Token is required","code":2} without an Authorization header, 403
{"text":"Invalid token","code":4} for a wrong token, 400
{"text":"Invalid data format","code":6} when the body is not a sequence of
JSON objects each with "event"; otherwise appends every event object as one
JSON line to --out, flushes and fsyncs, then answers 200
{"text":"Success","code":0}. With --cert and --key it speaks HTTPS, and
with --client-ca it also wants a client certificate signed by that CA.
Loopback only; standard library only.
"""

import argparse
import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/services/collector/event"


def parse_events(body):
    """The JSON objects of a HEC body (concatenated, whitespace between), or None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    decoder = json.JSONDecoder()
    events, pos = [], 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos == len(text):
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except ValueError:
            return None
        if not isinstance(obj, dict) or "event" not in obj:
            return None
        events.append(obj)
    return events if events else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--client-ca")
    args = parser.parse_args()
    lock = threading.Lock()
    # A receiver killed mid-write may leave half a line: drop it, as the
    # events after it were never acknowledged.
    if os.path.exists(args.out):
        with open(args.out, "rb+") as out:
            data = out.read()
            if data and not data.endswith(b"\n"):
                out.truncate(data.rfind(b"\n") + 1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def answer(self, status, text, code):
            body = json.dumps({"text": text, "code": code}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def read_body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def do_POST(self):
            body = self.read_body()
            if self.path.split("?")[0].rstrip("/") != PATH:
                self.answer(404, "The requested URL was not found on this server.", 404)
                return
            auth = self.headers.get("Authorization")
            if auth is None:
                self.answer(401, "Token is required", 2)
                return
            if auth != "Splunk " + args.token:
                self.answer(403, "Invalid token", 4)
                return
            events = parse_events(body)
            if events is None:
                self.answer(400, "Invalid data format", 6)
                return
            lines = "".join(
                json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events
            )
            with lock:
                with open(args.out, "a", encoding="utf-8") as out:
                    out.write(lines)
                    out.flush()
                    os.fsync(out.fileno())
            self.answer(200, "Success", 0)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.client_ca)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("listening", server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
