"""Ports: the small interfaces the core talks to. Adapters live in :mod:`beatsync.adapters`."""

from __future__ import annotations

import abc

from .errors import NotFound


class BlobNotFound(NotFound):
    code = "blob_not_found"


class BlobStore(abc.ABC):
    """Bytes by key (``outputs/{job_id}/output.mp4``, ``cache/beat_maps/...``).

    Keys are relative, ``/``-separated, without ``..``. Writes are atomic: a reader sees
    either the old object or the new one, never a partial one.
    """

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Return the object's bytes or raise :class:`BlobNotFound`."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete the object; deleting a missing object is not an error."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""

    @staticmethod
    def check_key(key: str) -> str:
        if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in key.split("/")):
            raise ValueError(f"invalid blob key {key!r}")
        return key
