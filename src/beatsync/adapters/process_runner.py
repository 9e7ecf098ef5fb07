"""ComposeRunner for one machine: each compose attempt is one child process, or, for a parallel
render, a set of task processes, each running ``beatsync compose-job JOB_ID`` - the same entry point
as the Cloud Run job's container - with ``CLOUD_RUN_TASK_INDEX`` / ``CLOUD_RUN_TASK_COUNT`` /
``CLOUD_RUN_TASK_ATTEMPT`` set as Cloud Run sets them. Like a Cloud Run job execution, at most
``parallelism`` tasks run at once (default: the machine's cores), a task that exits non-zero is
started again up to ``max_retries`` times, and the handle reads ``exited`` once every task has
finished (or given up)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time

from ..ports import ComposeRunner


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


class _Execution:
    """The task processes of one parallel compose attempt, supervised by a thread."""

    def __init__(self, runner: "ProcessComposeRunner", job_id: str, tasks: int):
        self.runner, self.job_id, self.tasks = runner, job_id, tasks
        self.procs: dict[int, subprocess.Popen] = {}
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._supervise, name=f"compose-{job_id[:8]}", daemon=True)
        self.thread.start()

    def _supervise(self) -> None:
        todo = [(i, 0) for i in range(self.tasks)]  # (task index, attempt)
        running: dict[int, tuple[subprocess.Popen, int]] = {}
        limit = max(1, min(self.tasks, self.runner.parallelism))
        while (todo or running) and not self.stopped.is_set():
            while todo and len(running) < limit and not self.stopped.is_set():
                index, attempt = todo.pop(0)
                proc = self.runner._spawn(self.job_id, {"CLOUD_RUN_TASK_INDEX": str(index),
                                                        "CLOUD_RUN_TASK_COUNT": str(self.tasks),
                                                        "CLOUD_RUN_TASK_ATTEMPT": str(attempt)})
                with self.lock:
                    self.procs[index] = proc
                running[index] = (proc, attempt)
            for index, (proc, attempt) in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                del running[index]
                if code != 0 and attempt < self.runner.max_retries and not self.stopped.is_set():
                    todo.append((index, attempt + 1))
            time.sleep(0.1)

    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        with self.lock:
            procs = list(self.procs.values())
        for proc in procs:
            _kill(proc)


class ProcessComposeRunner(ComposeRunner):
    def __init__(self, log_dir: str | os.PathLike | None = None, *, max_retries: int = 2,
                 parallelism: int | None = None):
        self._procs: dict[str, subprocess.Popen] = {}
        self._executions: dict[str, _Execution] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.log_dir = log_dir
        self.max_retries = max_retries
        self.parallelism = parallelism or os.cpu_count() or 1

    def _spawn(self, job_id: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "beatsync.cli", "compose-job", job_id]
        full_env = {**os.environ, **env} if env else None
        if self.log_dir is None:
            return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
                                    env=full_env)
        os.makedirs(self.log_dir, exist_ok=True)
        with open(os.path.join(self.log_dir, f"compose-{job_id}.log"), "ab") as out:  # the child keeps its copy
            return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=full_env)

    def start(self, job_id: str, tasks: int = 1) -> str:
        if tasks > 1:
            handle = f"process-tasks/{os.getpid()}-{next(self._ids)}"
            with self._lock:
                self._executions[handle] = _Execution(self, job_id, tasks)
            return handle
        proc = self._spawn(job_id)
        handle = f"process/{proc.pid}"
        with self._lock:
            self._procs[handle] = proc
        return handle

    def _proc(self, handle: str) -> subprocess.Popen | None:
        with self._lock:
            return self._procs.get(handle)

    def state(self, handle: str) -> str:
        with self._lock:
            execution = self._executions.get(handle)
        if execution is not None:
            return "running" if execution.running() else "exited"
        proc = self._proc(handle)
        if proc is None:
            return "unknown"
        return "running" if proc.poll() is None else "exited"

    def stop(self, handle: str) -> None:
        with self._lock:
            execution = self._executions.get(handle)
        if execution is not None:
            execution.stop()
            return
        proc = self._proc(handle)
        if proc is None:
            return
        _kill(proc)
