"""Real HTTP servers on loopback for the tests: a media host (files plus misbehaving routes) and a
webhook receiver that records what it gets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests.emulators import free_port, stop_process
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


class _MediaHandler(BaseHTTPRequestHandler):
    root: Path
    hits: list
    together: dict  # /together/NAME?n=N: the requests in flight at once, at most (see do_GET)
    trickled: list  # bytes /slow sent before it finished or its client went away, one entry per request

    def log_message(self, *args):
        pass

    def _wait_together(self, n: int) -> None:
        """Hold the request until ``n`` requests to /together/ are in flight (at most 10 s)."""
        t = self.together
        with t["cond"]:
            t["in_flight"] += 1
            t["arrived"] += 1
            t["max"] = max(t["max"], t["in_flight"])
            t["cond"].notify_all()
            t["cond"].wait_for(lambda: t["arrived"] >= n, timeout=10)
            t["in_flight"] -= 1

    def do_GET(self):  # noqa: N802
        parts = urlsplit(self.path)
        self.hits.append(parts.path)
        q = parse_qs(parts.query)
        if parts.path.startswith("/together/"):  # served as the file it names, once n requests are in flight
            self._wait_together(int(q.get("n", ["1"])[0]))
            parts = parts._replace(path=parts.path.removeprefix("/together"))
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", q["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts.path == "/slow":  # headers (no length), then a trickle that never ends
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            sent = 0
            try:
                for _ in range(600):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    sent += 1
                    time.sleep(0.1)
            except OSError:
                pass
            self.trickled.append(sent)
            return
        if parts.path == "/slow-headers":  # a status line, then one header byte every 0.3 s, for minutes
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                self.wfile.flush()
                for _ in range(600):
                    self.wfile.write(b"X")
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass
            self.close_connection = True
            return
        if parts.path == "/short":  # promises more than it sends
            self.send_response(200)
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(b"x" * 100)
            self.close_connection = True
            return
        if parts.path == "/lie":  # sends more bytes than its Content-Length
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"this is not media; " * 300)
            self.close_connection = True
            return
        if parts.path == "/huge":  # claims a giant body
            self.send_response(200)
            self.send_header("Content-Length", str(10 ** 12))
            self.end_headers()
            return
        path = self.root / unquote(parts.path).lstrip("/")
        if not path.is_file() or ".." in parts.path:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.wfile.write(data)


class Server:
    def __init__(self, handler):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def media_server(root: str | os.PathLike) -> Server:
    handler = type("H", (_MediaHandler,), {"root": Path(root), "hits": [], "trickled": [],
                                           "together": {"cond": threading.Condition(), "in_flight": 0, "arrived": 0,
                                                        "max": 0}})
    server = Server(handler)
    server.hits, server.together, server.trickled = handler.hits, handler.together, handler.trickled
    return server


class _ReceiverHandler(BaseHTTPRequestHandler):
    received: list
    fail_first: list  # [n]: answer 500 to the first n deliveries

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.paths.append(self.path)
        if self.fail_first[0] > 0:
            self.fail_first[0] -= 1
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.received.append({"headers": dict(self.headers), "body": body, "json": json.loads(body)})
        self.send_response(204)
        self.end_headers()


class _HostileReceiverHandler(BaseHTTPRequestHandler):
    """``hang``: reads the delivery and never answers; ``dribble``: answers 200 with a long
    Content-Length, then one byte every 0.3 s."""

    mode: str
    hits: list

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.hits.append(time.monotonic())
        try:
            if self.mode == "hang":
                time.sleep(120)
                return
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(400):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass
        self.close_connection = True


def hostile_receiver(mode: str) -> Server:
    handler = type("HR", (_HostileReceiverHandler,), {"mode": mode, "hits": []})
    server = Server(handler)
    server.hits = handler.hits
    return server


def webhook_receiver(fail_first: int = 0) -> Server:
    handler = type("R", (_ReceiverHandler,), {"received": [], "fail_first": [fail_first], "paths": []})
    server = Server(handler)
    server.received, server.paths = handler.received, handler.paths
    return server


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


API = "/api/v1/beat-sync"


class Serve:
    """One `beatsync serve` process on a data folder; restartable."""

    def __init__(self, data: Path, env: dict):
        self.data, self.env, self.port = data, env, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.start()

    def start(self):
        log = open(self.data.parent / "serve.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "beatsync.cli", "serve", "--port", str(self.port)],
                                     env={**os.environ, **self.env, "BEATSYNC_DATA_DIR": str(self.data)},
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self._up(), timeout=60, interval=0.2)

    def _up(self):
        if self.proc.poll() is not None:
            raise RuntimeError((self.data.parent / "serve.log").read_text()[-3000:])
        try:
            return httpx.get(f"{self.url}/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            stop_process(self.proc, grace=15)

    def job(self, job_id):
        return httpx.get(f"{self.url}{API}/create/{job_id}", timeout=10).json()
