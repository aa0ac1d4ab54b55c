#!/usr/bin/env python3
"""A test-only OTLP/HTTP receiver on loopback: stores each accepted POST body as a file and
answers 200 with an empty export response; the first --fail requests get 503 with Retry-After.
  receiver.py PORT OUT_DIR [--fail N] [--retry-after S]
Each stored body is OUT_DIR/<prefix>/<seq>-<metrics|logs>.<gz|bin>, where <prefix> is the URL
path before /v1/ ("root" when none); every request is logged to OUT_DIR/requests.log as
'<unix time> <path> <status> <content-type> <content-encoding>'."""
import argparse
import http.server
import os
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("out")
ap.add_argument("--fail", type=int, default=0)
ap.add_argument("--retry-after", default="2")
args = ap.parse_args()
lock = threading.Lock()
state = {"seq": 0, "failed": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        prefix, _, signal = self.path.rpartition("/v1/")
        prefix = prefix.strip("/").replace("/", "_") or "root"
        ctype = self.headers.get("Content-Type", "-")
        cenc = self.headers.get("Content-Encoding", "-")
        with lock:
            if signal not in ("metrics", "logs"):
                status = 404
            elif state["failed"] < args.fail:
                state["failed"] += 1
                status = 503
            else:
                status = 200
                state["seq"] += 1
                d = os.path.join(args.out, prefix)
                os.makedirs(d, exist_ok=True)
                ext = "gz" if cenc == "gzip" else "bin"
                with open(os.path.join(d, f"{state['seq']:06d}-{signal}.{ext}"), "wb") as f:
                    f.write(body)
            with open(os.path.join(args.out, "requests.log"), "a") as f:
                f.write(f"{time.time():.3f} {self.path} {status} {ctype} {cenc}\n")
        if status == 503:
            self.answer(503, [("Retry-After", args.retry_after)])
        else:
            self.answer(status)


server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
print("listening", flush=True)
server.serve_forever()
