"""GET /health: real checks of what this process depends on.

``ok`` / ``error`` per dependency; ``absent`` where this deployment does not carry the library
(the light submit/status functions have no PyAV or librosa). Unhealthy (503) when a store fails,
degraded when a present media library is broken.
"""

from __future__ import annotations

import importlib.util
import time

from .. import __version__


def _lib(name: str, probe) -> tuple[str, str]:
    if importlib.util.find_spec(name) is None:
        return "absent", "not installed in this deployment"
    try:
        return "ok", probe()
    except Exception as exc:  # noqa: BLE001 - a broken library is what we report
        return "error", f"{type(exc).__name__}: {exc}"[:300]


def _ffmpeg() -> str:
    import av

    av.codec.Codec("libx264", "w")
    av.codec.Codec("aac", "w")
    return f"PyAV {av.__version__}, FFmpeg {av.ffmpeg_version_info}, libx264 and aac encoders"


def _librosa() -> str:
    import librosa

    return f"librosa {librosa.__version__}"


def _madmom() -> str:
    import os

    import madmom
    from madmom.models import BEATS_LSTM

    missing = [p for p in BEATS_LSTM if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"{len(missing)} model files missing")
    return f"madmom {getattr(madmom, '__version__', '?')}, {len(BEATS_LSTM)} beat models"


def check(container) -> dict:
    checks, details = {}, {}
    t = time.perf_counter()
    try:
        container.blobs.exists("health/probe")
        checks["storage"], details["storage"] = "ok", type(container.blobs).__name__
    except Exception as exc:  # noqa: BLE001
        checks["storage"], details["storage"] = "error", f"{type(exc).__name__}: {exc}"[:300]
    try:
        container.jobs.list("__health__", limit=1)
        checks["job_store"], details["job_store"] = "ok", type(container.jobs).__name__
    except Exception as exc:  # noqa: BLE001
        checks["job_store"], details["job_store"] = "error", f"{type(exc).__name__}: {exc}"[:300]
    for name, probe in (("ffmpeg", _ffmpeg), ("librosa", _librosa), ("madmom", _madmom)):
        checks[name], details[name] = _lib("av" if name == "ffmpeg" else name, probe)
    if "error" in (checks["storage"], checks["job_store"]):
        status = "unhealthy"
    elif "error" in checks.values():
        status = "degraded"
    else:
        status = "healthy"
    details["elapsed_ms"] = f"{(time.perf_counter() - t) * 1000:.0f}"
    return {"status": status, "service": "beat-sync", "version": __version__, "checks": checks, "details": details}
