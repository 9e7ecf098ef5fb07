"""BlobStore on a local folder (the embedded default)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..ports import BlobNotFound, BlobStore


class LocalBlobStore(BlobStore):
    """Objects are files under ``root``. Signed URLs point at the local server's ``/files/`` route
    (``base_url``), carrying an expiry and an HMAC over key + expiry made with ``secret``."""

    def __init__(self, root: str | os.PathLike, *, base_url: str = "http://127.0.0.1:8080",
                 secret: bytes | None = None):
        self.root = Path(root)
        self.base_url, self._secret = base_url, secret

    def path(self, key: str) -> Path:
        """Where the object lives on disk (for the local server's file route)."""
        return self._path(key)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*self.check_key(key).split("/"))

    def _tempfile(self, path: Path) -> tuple[int, str]:
        """A temporary file beside ``path``, its folders made (again, if a delete pruned them meanwhile)."""
        for attempt in range(5):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                return tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
            except FileNotFoundError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        fd, tmp = self._tempfile(path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> None:
        dest = self._path(key)
        fd, tmp = self._tempfile(dest)
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_file(self, key: str, path: str) -> None:
        src = self._path(key)
        if not src.is_file():
            raise BlobNotFound(f"no blob {key!r}")
        shutil.copyfile(src, path)

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(f"no blob {key!r}") from None

    def signed_url(self, key: str, expires_in: int) -> str:
        from ..signing import sign_link

        if self._secret is None:
            raise RuntimeError("this LocalBlobStore was built without a signing secret")
        return sign_link(self._secret, self.base_url, self.check_key(key), expires_in)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(f"no blob {key!r}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the object, and the folders it leaves empty (a job's ``inputs/audio/{id}/``...)."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()  # only an empty folder; a write in progress keeps its .tmp- file there
            except OSError:
                break
            parent = parent.parent

    def list(self, prefix: str = "") -> list[str]:
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self.root if ".." in folder.split("/") else self.root / folder  # only the prefix's folder is walked
        if not base.is_dir():
            return []
        keys = []
        # os.walk, not rglob: a folder that a concurrent delete empties and removes is skipped, not an error
        for dirpath, _, files in os.walk(base):
            for name in files:
                if not name.startswith(".tmp-"):
                    key = os.path.relpath(os.path.join(dirpath, name), self.root).replace(os.sep, "/")
                    if key.startswith(prefix):
                        keys.append(key)
        return sorted(keys)
