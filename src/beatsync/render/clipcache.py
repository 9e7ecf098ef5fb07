"""The clips' planning analysis (:func:`beatsync.render.motion.analyse_clip`) cached by clip content
hash, like beat maps: through the :class:`~beatsync.ports.BlobStore` port under
``cache/clip_analysis/{clip_hash}/{variant}.json`` (:func:`beatsync.keys.cached_clip_analysis`), where
the variant names the analysis's version, its step, its budget and the decoder's versions, so a
change in any of them misses the cache and analyses again. Shared by every job and ``beatsync make``.
"""

from __future__ import annotations

import hashlib
import json
import os

import av
import numpy as np

from .. import keys
from ..ports import BlobNotFound, BlobStore
from . import motion
from .motion import ClipAnalysis

CHUNK = 1 << 20


def clip_hash(path: str | os.PathLike) -> str:
    """sha256 of the clip's bytes (read in 1 MiB chunks: a clip is never held whole)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def variant_key(step: float, budget: float) -> str:
    """The analysis's parameters and versions (``motion.ANALYSIS_VERSION``, the decoder's), as a short hash."""
    codec = av.library_versions.get("libavcodec")
    blob = json.dumps({"version": motion.ANALYSIS_VERSION, "step": step,
                       "budget": budget, "av": av.__version__, "libavcodec": codec}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ClipAnalysisCache:
    def __init__(self, store: BlobStore):
        self.store = store

    def get(self, digest: str, variant: str, bins: int) -> ClipAnalysis | None:
        """The cached analysis (``frames`` 0: nothing decoded), or None (absent, or not of ``bins`` bins:
        an entry this version cannot read is analysed again and overwritten)."""
        try:
            data = json.loads(self.store.get_bytes(keys.cached_clip_analysis(digest, variant)))
            scores = np.asarray(data["motion"], dtype=float)
            cuts = tuple(float(x) for x in data["cuts"])
            coverage = float(data["coverage"])
            holds = tuple((float(a), float(b)) for a, b in data["holds"])
            looks = tuple(bytes.fromhex(x) for x in data["looks"])
            version = data["version"]
        except (BlobNotFound, ValueError, KeyError, TypeError):
            return None
        if version != motion.ANALYSIS_VERSION or scores.shape != (bins,):
            return None
        return ClipAnalysis(motion=scores, cuts=cuts, frames=0, coverage=coverage, holds=holds, looks=looks)

    def put(self, digest: str, variant: str, analysis: ClipAnalysis) -> None:
        doc = {"version": motion.ANALYSIS_VERSION, "motion": [float(x) for x in analysis.motion],
               "cuts": list(analysis.cuts), "frames": analysis.frames, "coverage": analysis.coverage,
               "holds": [list(h) for h in analysis.holds], "looks": [x.hex() for x in analysis.looks]}
        self.store.put_bytes(keys.cached_clip_analysis(digest, variant), json.dumps(doc).encode(), "application/json")
