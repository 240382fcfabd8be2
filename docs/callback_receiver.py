"""Print every callback POSTed to it, and answer 200: `python docs/callback_receiver.py [PORT]`.

A stand-in for your own endpoint while trying `picjobs emulator`'s callbacks (docs/emulator.md).
Listens on 127.0.0.1 only; standard library only.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        print(f"POST {self.path} {self.headers.get('Content-Type')}", flush=True)
        print(body.decode("utf-8", "replace"), flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # the body says enough
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9999
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
