"""Orchestrator for one machine (``beatsync serve``): worker threads run each job's steps.

Jobs are not held in memory only: the job store is the queue's durable copy. On start-up the
server hands every queued or processing job back to :meth:`LocalOrchestrator.resume`, so a job
interrupted by a crash or ``kill -9`` runs again (its steps reuse finished work).
Transient errors (a store briefly unavailable) are retried with backoff; after the last retry
the job ends ``failed`` - it is never left running forever.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

from ..ports import Orchestrator

log = logging.getLogger("beatsync.orchestrator")


class LocalOrchestrator(Orchestrator):
    def __init__(self, run: Callable[[str], object], *, workers: int = 1, retries: int = 3,
                 backoff: float = 1.0, on_give_up: Callable[[str, BaseException], object] | None = None,
                 transient: tuple[type[BaseException], ...] = (Exception,)):
        self._run, self.workers, self.retries, self.backoff = run, workers, retries, backoff
        self._on_give_up, self._transient = on_give_up, transient
        self._queue: queue.Queue[str] = queue.Queue()
        self._queued: set[str] = set()
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _ensure_workers(self) -> None:
        with self._lock:
            while len(self._threads) < self.workers:
                t = threading.Thread(target=self._loop, name=f"beatsync-worker-{len(self._threads)}", daemon=True)
                t.start()
                self._threads.append(t)

    def start(self, job) -> str | None:
        self._enqueue(job.job_id)
        return None

    def cancel(self, job) -> None:
        """Nothing to stop here: the running step polls the job's cancel flag (within a second)."""

    def resume(self, jobs) -> int:
        n = 0
        for job in jobs:
            n += self._enqueue(job.job_id)
        return n

    def _enqueue(self, job_id: str) -> bool:
        with self._lock:
            if job_id in self._queued or job_id in self._running:
                return False
            self._queued.add(job_id)
        self._queue.put(job_id)
        self._ensure_workers()
        return True

    def idle(self) -> bool:
        with self._lock:
            return not self._queued and not self._running

    def _loop(self) -> None:
        while True:
            job_id = self._queue.get()
            with self._lock:
                self._queued.discard(job_id)
                self._running.add(job_id)
            try:
                self._attempt(job_id)
            finally:
                with self._lock:
                    self._running.discard(job_id)

    def _attempt(self, job_id: str) -> None:
        for attempt in range(self.retries + 1):
            try:
                self._run(job_id)
                return
            except self._transient as exc:
                if attempt == self.retries:
                    log.error("job %s: giving up after %d attempts: %s", job_id, attempt + 1, exc)
                    if self._on_give_up is not None:
                        try:
                            self._on_give_up(job_id, exc)
                        except Exception:  # noqa: BLE001
                            log.exception("job %s: could not record the failure", job_id)
                    return
                delay = self.backoff * 2 ** attempt
                log.warning("job %s: attempt %d failed (%s); retrying in %.1f s", job_id, attempt + 1, exc, delay)
                time.sleep(delay)
