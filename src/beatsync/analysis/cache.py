"""Beat-map cache keyed by audio content hash, method, parameters and library versions.

Stored through the :class:`~beatsync.ports.BlobStore` port under
``cache/beat_maps/{audio_hash}/{variant}.json`` so the local folder and GCS share one layout.
"""

from __future__ import annotations

import hashlib
import json

from ..contracts import BeatMap
from .. import keys
from ..ports import BlobNotFound, BlobStore

PREFIX = keys.BEAT_MAP_CACHE


def variant_key(method: str, fps: float, analyzer: str, params: dict | None = None) -> str:
    blob = json.dumps({"method": method, "fps": fps, "analyzer": analyzer, "params": params or {}}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class BeatMapCache:
    def __init__(self, store: BlobStore):
        self.store = store

    @staticmethod
    def key(audio_hash: str, variant: str) -> str:
        return keys.cached_beat_map(audio_hash, variant)

    def get(self, audio_hash: str, variant: str) -> BeatMap | None:
        try:
            data = self.store.get_bytes(self.key(audio_hash, variant))
        except BlobNotFound:
            return None
        try:
            return BeatMap.model_validate_json(data)
        except ValueError:
            return None  # an entry from an incompatible version: recompute and overwrite

    def put(self, beat_map: BeatMap, variant: str) -> None:
        self.store.put_bytes(self.key(beat_map.audio_hash, variant), beat_map.to_json(None).encode(), "application/json")
