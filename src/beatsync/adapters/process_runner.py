"""ComposeRunner for one machine: each compose attempt is a child process running
``beatsync compose-job JOB_ID`` - the same entry point as the Cloud Run job's container."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from ..ports import ComposeRunner


class ProcessComposeRunner(ComposeRunner):
    def __init__(self, log_dir: str | os.PathLike | None = None):
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self.log_dir = log_dir

    def start(self, job_id: str) -> str:
        cmd = [sys.executable, "-m", "beatsync.cli", "compose-job", job_id]
        if self.log_dir is None:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        else:
            os.makedirs(self.log_dir, exist_ok=True)
            with open(os.path.join(self.log_dir, f"compose-{job_id}.log"), "ab") as out:  # the child keeps its copy
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        handle = f"process/{proc.pid}"
        with self._lock:
            self._procs[handle] = proc
        return handle

    def _proc(self, handle: str) -> subprocess.Popen | None:
        with self._lock:
            return self._procs.get(handle)

    def state(self, handle: str) -> str:
        proc = self._proc(handle)
        if proc is None:
            return "unknown"
        return "running" if proc.poll() is None else "exited"

    def stop(self, handle: str) -> None:
        proc = self._proc(handle)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        except ProcessLookupError:
            pass
