"""A webhook receiver for tests, run as its own process so a test can kill it (no tests here).

``python -m tests.scripts.webhook_receiver PORT LOG MODE_FILE``: every request is appended to
LOG as one JSON line (receipt time, headers, raw body, the status answered) and flushed before
the answer is sent, so whatever was acknowledged is on record. MODE_FILE (read per request)
says how to answer: ``ok`` (200), ``500``, or ``stall`` (answer 200 only after 30 s: past any
sane timeout).
"""

from __future__ import annotations

import base64
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STALL_SECONDS = 30.0


def serve(port: int, log: Path, mode_file: Path) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            mode = mode_file.read_text(encoding="utf-8").strip() if mode_file.exists() else "ok"
            status = 500 if mode == "500" else 200
            if mode == "stall":
                time.sleep(STALL_SECONDS)
            line = {"at": time.time(), "status": status, "mode": mode, "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": base64.b64encode(body).decode()}
            with log.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
                handle.flush()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("receiver ready", flush=True)
    server.serve_forever()


def read_log(log: Path) -> list[dict[str, object]]:
    if not log.exists():
        return []
    entries = []
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            entry["raw"] = base64.b64decode(entry["body"])
            entries.append(entry)
    return entries


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
