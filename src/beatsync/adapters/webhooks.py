"""Notifier for one machine: a durable retry queue in SQLite, delivered by a background thread.

Each event is stored before :meth:`notify` returns, so a restart loses nothing; delivery is a
signed POST (see :mod:`beatsync.signing`) through the SSRF-safe fetcher, retried with exponential
backoff (1 s, 2 s, 4 s ... capped at 5 min) until a 2xx answer or ``max_attempts``.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ..ports import Notifier
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
    try:
        resp.read(65536)  # bounded by the same deadline: a receiver that dribbles its answer is cut off
        return 200 <= resp.status < 300, f"HTTP {resp.status}"
    except BeatsyncError as exc:
        return False, str(exc)
    finally:
        resp.close()


class LocalWebhookNotifier(Notifier):
    def __init__(self, path: str | os.PathLike, secret: bytes, policy, *, max_attempts: int = 8,
                 base_delay: float = 1.0, max_delay: float = 300.0, poll: float = 0.5):
        self.path, self.secret, self.policy = Path(path), secret, policy
        self.max_attempts, self.base_delay, self.max_delay, self.poll = max_attempts, base_delay, max_delay, poll
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(SCHEMA)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @contextmanager
    def _db(self):
        """One transaction on a connection that is closed afterwards (sqlite3's own context
        manager commits but leaves the connection open)."""
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
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
        """Start the delivery thread (also drains what a previous run left pending, including a
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
                self.run_due()
            except Exception:  # noqa: BLE001 - keep delivering
                log.exception("webhook delivery loop")
            self._wake.wait(self.poll)
            self._wake.clear()

    def run_due(self) -> int:
        """Attempt every delivery that is due; return how many were attempted."""
        with self._db() as db:
            due = db.execute("SELECT id, url, body, event, attempts FROM deliveries WHERE state = 'pending' "
                             "AND next_at <= ? ORDER BY next_at LIMIT 50", (time.time(),)).fetchall()
        for id_, url, body, event, attempts in due:
            with self._db() as db:  # claim it: two loops never send the same delivery at once
                if db.execute("UPDATE deliveries SET state = 'sending' WHERE id = ? AND state = 'pending'",
                              (id_,)).rowcount == 0:
                    continue
            ok, detail = deliver_once(url, bytes(body), event, self.secret, self.policy)
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
                           (attempts, state, next_at, None if ok else detail, id_))
        return len(due)
