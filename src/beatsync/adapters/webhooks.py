"""Notifier for one machine: a durable retry queue in SQLite, delivered by a small pool of threads.

Each event is stored before :meth:`notify` returns, so a restart loses nothing; delivery is a
signed POST (see :mod:`beatsync.signing`) through the SSRF-safe fetcher, retried with exponential
backoff (1 s, 2 s, 4 s ... capped at 5 min) until a 2xx answer or ``max_attempts`` (then ``dead``,
with the last error as its reason, reported to ``on_outcome`` and so to the job's log).

Isolation: one attempt, from connect to the last byte of the answer, is bounded by ``timeout``;
at most ``concurrency`` attempts run at once and at most one per destination (``host:port``), and
each dispatch round takes the oldest due delivery of every idle destination, so a slow or hanging
receiver delays only its own deliveries.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable
from urllib.parse import urlsplit

from ..ports import Notifier
from . import _sqlite
from ..signing import EVENT_HEADER, SIGNATURE_HEADER, sign_event

log = logging.getLogger("beatsync.webhooks")

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    event TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_at);
"""


def deliver_once(url: str, body: bytes, event: str, secret: bytes, policy, timeout: float = 10.0) -> tuple[bool, str]:
    """One signed POST, all of it (connect to the last byte of the answer) within ``timeout`` seconds;
    ``(delivered, detail)``."""
    from ..errors import BeatsyncError
    from ..fetch import request

    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign_event(secret, body),
               EVENT_HEADER: event}
    try:
        resp = request("POST", url, policy, body=body, headers=headers, follow=False, timeout=timeout)
    except BeatsyncError as exc:
        return False, str(exc)
    ok = 200 <= resp.status < 300
    try:
        resp.read(65536)  # bounded by the same deadline: a receiver that dribbles its answer is cut off
        return ok, f"HTTP {resp.status}"
    except BeatsyncError:  # the status line and headers came: the receiver has the event
        return ok, f"HTTP {resp.status} (answer body cut off)"
    finally:
        resp.close()


def destination(url: str) -> str:
    """``host:port`` of a webhook URL (the unit of fairness); the URL itself when it does not parse."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        return f"{(parts.hostname or '').lower()}:{port}"
    except ValueError:
        return url


class LocalWebhookNotifier(Notifier):
    def __init__(self, path: str | os.PathLike, secret: bytes, policy, *, max_attempts: int = 8,
                 base_delay: float = 1.0, max_delay: float = 300.0, poll: float = 0.5, concurrency: int = 4,
                 timeout: float = 10.0, on_outcome: Callable[[str, str, int, str], object] | None = None):
        self.path, self.secret, self.policy = _sqlite.create(path, SCHEMA), secret, policy
        self.max_attempts, self.base_delay, self.max_delay, self.poll = max_attempts, base_delay, max_delay, poll
        self.concurrency, self.timeout, self.on_outcome = max(1, concurrency), timeout, on_outcome
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._busy: set[str] = set()  # destinations with an attempt in flight
        self._pool: ThreadPoolExecutor | None = None

    @contextmanager
    def _db(self):
        """One transaction on a connection that is closed afterwards (sqlite3's own context
        manager commits but leaves the connection open)."""
        db = sqlite3.connect(self.path, timeout=_sqlite.LOCK_TIMEOUT)
        try:
            with db:
                yield db
        finally:
            db.close()

    def notify(self, url: str, event: dict) -> None:
        body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO deliveries (id, url, body, event, next_at) VALUES (?,?,?,?,?)",
                       (event["id"], url, body, event["event"], time.time()))
        self.start()
        self._wake.set()

    def start(self) -> None:
        """Start the dispatcher (also drains what a previous run left pending, including a
        delivery it was sending when it died: at least once)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                with self._db() as db:
                    db.execute("UPDATE deliveries SET state = 'pending' WHERE state = 'sending'")
                self._thread = threading.Thread(target=self._loop, name="beatsync-webhooks", daemon=True)
                self._thread.start()

    def pending(self) -> int:
        with self._db() as db:
            return db.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'").fetchone()[0]

    def deliveries(self) -> list[dict]:
        with self._db() as db:
            rows = db.execute("SELECT id, url, event, attempts, state, last_error FROM deliveries").fetchall()
        return [dict(zip(("id", "url", "event", "attempts", "state", "last_error"), r)) for r in rows]

    def _loop(self) -> None:
        while True:
            try:
                self._dispatch()
            except Exception:  # noqa: BLE001 - keep delivering
                log.exception("webhook delivery loop")
            self._wake.wait(self.poll)
            self._wake.clear()

    def run_due(self) -> int:
        """Attempt what is due now (as the dispatcher would) and wait for those attempts; return
        how many were attempted."""
        futures = self._dispatch()
        for f in futures:
            f.result()
        return len(futures)

    def _dispatch(self) -> list[Future]:
        """Start an attempt for the oldest due delivery of each idle destination, up to the free
        slots of the pool."""
        with self._lock:
            free = self.concurrency - len(self._busy)
            busy = set(self._busy)
        if free <= 0:
            return []
        with self._db() as db:
            due = db.execute("SELECT id, url, body, event, attempts FROM deliveries WHERE state = 'pending' "
                             "AND next_at <= ? ORDER BY next_at LIMIT 1000", (time.time(),)).fetchall()
        chosen, seen = [], set(busy)
        for row in due:
            dest = destination(row[1])
            if dest in seen:
                continue
            seen.add(dest)
            chosen.append((dest, row))
            if len(chosen) >= free:
                break
        futures = []
        for dest, (id_, url, body, event, attempts) in chosen:
            with self._db() as db:  # claim it: two loops never send the same delivery at once
                if db.execute("UPDATE deliveries SET state = 'sending' WHERE id = ? AND state = 'pending'",
                              (id_,)).rowcount == 0:
                    continue
            with self._lock:
                self._busy.add(dest)
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="beatsync-webhook")
                pool = self._pool
            futures.append(pool.submit(self._attempt, dest, id_, url, bytes(body), event, attempts))
        return futures

    def _attempt(self, dest: str, id_: str, url: str, body: bytes, event: str, attempts: int) -> None:
        try:
            try:
                ok, detail = deliver_once(url, body, event, self.secret, self.policy, self.timeout)
            except Exception as exc:  # noqa: BLE001 - a bug or an odd URL must not leave it 'sending'
                log.exception("webhook %s to %s", id_, url)
                ok, detail = False, f"{type(exc).__name__}"
            attempts += 1
            if ok:
                state, next_at = "delivered", 0.0
            elif attempts >= self.max_attempts:
                state, next_at = "dead", 0.0
                log.error("webhook %s to %s given up after %d attempts: %s", id_, url, attempts, detail)
            else:
                state = "pending"
                next_at = time.time() + min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
            with self._db() as db:
                db.execute("UPDATE deliveries SET attempts = ?, state = ?, next_at = ?, last_error = ? WHERE id = ?",
                           (attempts, state, next_at, None if ok else detail[:2000], id_))
            if state != "pending" and self.on_outcome is not None:
                try:
                    job_id = json.loads(body).get("job_id")
                    if job_id:
                        self.on_outcome(job_id, state, attempts, detail)
                except Exception:  # noqa: BLE001 - the delivery's state is recorded either way
                    log.exception("webhook %s: could not report its outcome", id_)
        finally:
            with self._lock:
                self._busy.discard(dest)
            self._wake.set()
