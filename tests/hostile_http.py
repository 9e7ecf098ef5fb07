"""Hostile HTTP clients on raw sockets: exact bytes on the wire (framing the usual clients refuse to
send), slow connections that dribble a request head, and a reader of the answer that tolerates a
server closing early. Used by tests/e2e/test_serving.py and benchmarks/hostile_serving.py."""

from __future__ import annotations

import collections
import json
import selectors
import socket
import threading
import time

API = "/api/v1/beat-sync"


def answer(sock: socket.socket, timeout: float = 10.0) -> tuple[int | None, dict | None, bytes]:
    """Read one answer from ``sock``: ``(status, JSON body or None, raw bytes)``; status None when
    the connection ended (or ``timeout`` passed) before a status line."""
    sock.settimeout(timeout)
    raw = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
            head, sep, body = raw.partition(b"\r\n\r\n")
            if sep:
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(body) >= length:
                    break
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        pass
    if not raw.startswith(b"HTTP/1."):
        return None, None, raw
    status = int(raw.split(b" ", 2)[1])
    body = raw.partition(b"\r\n\r\n")[2]
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    return status, doc, raw


def send(port: int, data: bytes, *, then_close: bool = False, timeout: float = 10.0,
         host: str = "127.0.0.1") -> tuple[int | None, dict | None, bytes]:
    """Send ``data`` as is and read the answer (``then_close``: half-close first, as a client that
    stops sending)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if then_close:
                sock.shutdown(socket.SHUT_WR)
        except (ConnectionResetError, BrokenPipeError):
            pass
        return answer(sock, timeout)


def head(method: str, path: str, headers: dict[str, str] | list[tuple[str, str]], version: str = "1.1") -> bytes:
    items = headers.items() if isinstance(headers, dict) else headers
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in items)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class SlowHeads:
    """``count`` connections, each sending a request head one byte every ``interval`` seconds and
    never finishing it (a slowloris). ``reconnect``: a connection the server closes is opened again
    (an attacker keeping ``count`` open). Runs on one thread with a selector."""

    PREFIX = b"GET /api/v1/beat-sync/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

    def __init__(self, port: int, count: int, interval: float = 5.0, reconnect: bool = False,
                 host: str = "127.0.0.1", connect_rate: float = 4000.0):
        self.addr, self.count, self.interval, self.reconnect = (host, port), count, interval, reconnect
        self.connect_rate = connect_rate
        self.sel = selectors.DefaultSelector()
        self.socks: dict[socket.socket, float] = {}  # socket -> when its next byte is due
        self.due: collections.deque = collections.deque()  # (when, socket), in time order
        self.closed_by_server = 0
        self.connect_failures = 0
        self.opened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "SlowHeads":
        self._thread.start()
        return self

    @property
    def open(self) -> int:
        return len(self.socks)

    def _open_one(self) -> None:
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect_ex(self.addr)
            self.sel.register(s, selectors.EVENT_WRITE, "connecting")
        except OSError:
            s.close()
            self.connect_failures += 1
            return
        self.opened += 1
        self.socks[s] = float("inf")  # no byte is due until it is connected

    def _drop(self, s: socket.socket, by_server: bool) -> None:
        self.closed_by_server += by_server
        self.socks.pop(s, None)
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()

    def _run(self) -> None:
        last, budget = time.monotonic(), 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            budget = min(budget + (now - last) * self.connect_rate, 500.0)
            last = now
            want = self.count - len(self.socks)
            if want > 0 and (self.reconnect or self.opened < self.count):
                for _ in range(min(want, int(budget))):
                    self._open_one()
                    budget -= 1
            for key, events in self.sel.select(timeout=0.05):
                s = key.fileobj
                if key.data == "connecting":
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        self.connect_failures += 1
                        self._drop(s, False)
                        continue
                    try:
                        s.send(self.PREFIX)
                    except OSError:
                        self._drop(s, True)
                        continue
                    self.sel.modify(s, selectors.EVENT_READ, "open")
                    self.socks[s] = when = time.monotonic() + self.interval
                    self.due.append((when, s))
                    continue
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    self._drop(s, True)
                    continue
                if not data or data.startswith(b"HTTP/"):
                    self._drop(s, True)
            now = time.monotonic()
            while self.due and self.due[0][0] <= now:
                when, s = self.due.popleft()
                if self.socks.get(s) != when:
                    continue  # closed since
                try:
                    s.send(b"x")
                except BlockingIOError:
                    pass
                except OSError:
                    self._drop(s, True)
                    continue
                self.socks[s] = when = now + self.interval
                self.due.append((when, s))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for s in list(self.socks):
            self._drop(s, False)
        self.sel.close()
