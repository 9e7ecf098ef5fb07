"""Orchestrator for one machine (``beatsync serve``): worker threads run each job's steps.

Jobs are not held in memory only: the job store is the queue's durable copy. On start-up the
server hands every queued or processing job back to :meth:`LocalOrchestrator.resume`, so a job
interrupted by a crash or ``kill -9`` runs again (its steps reuse finished work).
Transient errors (a store briefly unavailable) are retried with backoff; after the last retry
the job ends ``failed`` - it is never left running forever.

Fairness: callers first, then their end users. Free workers take callers in turn (round-robin), and
within a caller its owners in turn: the caller's own jobs and each of its end users' (a trusted
caller's ``CALLER/user:USER``), one queue each. So one caller's backlog never stands in front of
another caller's next job, however many end users it names, and within a caller one user's backlog
never stands in front of another user's next job. Each
running job has a time budget (``budget(job_id)`` seconds, from its output length and size); past
it, ``on_over_budget`` ends the job (``time_budget_exceeded``) and the running step, which watches
for an ended job as for a cancel, stops within a second or two and frees the worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

from ..jobs.model import caller_of
from ..ports import Orchestrator

log = logging.getLogger("beatsync.orchestrator")


class LocalOrchestrator(Orchestrator):
    def __init__(self, run: Callable[[str], object], *, workers: int = 1, retries: int = 3,
                 backoff: float = 1.0, on_give_up: Callable[[str, BaseException], object] | None = None,
                 transient: tuple[type[BaseException], ...] = (Exception,),
                 budget: Callable[[str], float] | None = None,
                 on_over_budget: Callable[[str, float], object] | None = None, check_every: float = 0.5):
        self._run, self.workers, self.retries, self.backoff = run, workers, retries, backoff
        self._on_give_up, self._transient = on_give_up, transient
        self._budget, self._on_over_budget, self._check_every = budget, on_over_budget, check_every
        self._queues: dict[str, dict[str, deque[str]]] = {}  # caller -> owner -> its queued job ids, in order
        self._turns: deque[str] = deque()  # callers with queued jobs, in round-robin order
        self._owner_turns: dict[str, deque[str]] = {}  # caller -> its owners with queued jobs, in turn
        self._queued: set[str] = set()
        self._running: dict[str, tuple[float, float | None]] = {}  # job id -> (started, budget)
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._monitor: threading.Thread | None = None

    def _ensure_workers(self) -> None:
        with self._lock:
            while len(self._threads) < self.workers:
                t = threading.Thread(target=self._loop, name=f"beatsync-worker-{len(self._threads)}", daemon=True)
                t.start()
                self._threads.append(t)
            if self._budget is not None and (self._monitor is None or not self._monitor.is_alive()):
                self._monitor = threading.Thread(target=self._watch_budgets, name="beatsync-budgets", daemon=True)
                self._monitor.start()

    def start(self, job) -> str | None:
        self._enqueue(job.job_id, getattr(job, "owner", ""))
        return None

    def cancel(self, job) -> None:
        """Nothing to stop here: the running step polls the job's cancel flag (within a second)."""

    def resume(self, jobs) -> int:
        n = 0
        for job in jobs:
            n += self._enqueue(job.job_id, getattr(job, "owner", ""))
        return n

    def _enqueue(self, job_id: str, owner: str = "") -> bool:
        with self._lock:
            if job_id in self._queued or job_id in self._running:
                return False
            self._queued.add(job_id)
            caller = caller_of(owner)
            owners = self._queues.get(caller)
            if owners is None:
                owners = self._queues[caller] = {}
                self._owner_turns[caller] = deque()
                self._turns.append(caller)
            if owner not in owners:
                owners[owner] = deque()
                self._owner_turns[caller].append(owner)
            owners[owner].append(job_id)
            self._ready.notify()
        self._ensure_workers()
        return True

    def _next(self) -> str:
        """The next job: of the caller whose turn it is, the first queued job of the owner (the caller
        itself or one of its end users) whose turn it is within that caller (lock held)."""
        while not self._turns:
            self._ready.wait()
        caller = self._turns.popleft()
        owners, turns = self._queues[caller], self._owner_turns[caller]
        owner = turns.popleft()
        jobs = owners[owner]
        job_id = jobs.popleft()
        if jobs:
            turns.append(owner)  # its next job waits for the caller's other owners' turns
        else:
            del owners[owner]
        if turns:
            self._turns.append(caller)  # its next job waits for every other caller's turn
        else:
            del self._queues[caller], self._owner_turns[caller]
        return job_id

    def idle(self) -> bool:
        with self._lock:
            return not self._queued and not self._running

    def _loop(self) -> None:
        while True:
            with self._lock:
                job_id = self._next()
                self._queued.discard(job_id)
                self._running[job_id] = (time.monotonic(), None)
            budget = None
            if self._budget is not None:
                try:
                    budget = self._budget(job_id)
                except Exception:  # noqa: BLE001 - no budget rather than no job
                    log.exception("job %s: no time budget", job_id)
            with self._lock:
                self._running[job_id] = (time.monotonic(), budget)
            try:
                self._attempt(job_id)
            finally:
                with self._lock:
                    self._running.pop(job_id, None)

    def _watch_budgets(self) -> None:
        over: set[str] = set()
        while True:
            time.sleep(self._check_every)
            t = time.monotonic()
            with self._lock:
                late = [(j, b) for j, (started, b) in self._running.items()
                        if b is not None and t - started > b and j not in over]
                over &= set(self._running)
            for job_id, budget in late:
                over.add(job_id)
                log.warning("job %s: over its time budget of %.0f s; ending it", job_id, budget)
                if self._on_over_budget is not None:
                    try:
                        self._on_over_budget(job_id, budget)
                    except Exception:  # noqa: BLE001
                        log.exception("job %s: could not end it", job_id)

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
