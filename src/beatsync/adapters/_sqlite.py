"""What the SQLite adapters share: creating a database file with its schema in WAL mode, and a write
transaction (BEGIN IMMEDIATE, rolled back on any error, the connection always closed).

WAL is set once, when the file is created: the mode is stored in the database. Setting it again on
every connection asks for a lock that SQLite does not wait for ("database is locked" at once while
another connection writes: CI saw it as a 500 under 50 concurrent creates)."""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import StoreUnavailable

LOCK_TIMEOUT = 30.0  # seconds a connection waits for another's lock


def create(path: str | os.PathLike, schema: str) -> Path:
    """The database at ``path`` with ``schema`` applied (its parent folder made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=LOCK_TIMEOUT)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)  # executescript manages its own transaction
    finally:
        db.close()
    return path


@contextmanager
def transaction(path: Path, busy: str | None = None) -> Iterator[sqlite3.Connection]:
    """A write transaction on ``path``. With ``busy``, a database still locked after ``LOCK_TIMEOUT``
    raises :class:`StoreUnavailable` with that message (retry later)."""
    db = sqlite3.connect(path, timeout=LOCK_TIMEOUT, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if busy is None:
            raise
        raise StoreUnavailable(f"{busy} ({exc})") from None
    finally:
        db.close()
