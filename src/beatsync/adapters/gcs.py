"""BlobStore on Google Cloud Storage. The client is built on first use, never at import."""

from __future__ import annotations

import functools

from ..ports import BlobNotFound, BlobStore


class GcsBlobStore(BlobStore):
    def __init__(self, bucket: str, *, project: str | None = None, endpoint: str | None = None):
        """``endpoint``: an emulator's URL (fake-gcs-server); anonymous credentials are used then."""
        self.bucket_name, self.project, self.endpoint = bucket, project, endpoint

    @functools.cached_property
    def bucket(self):
        from google.cloud import storage

        if self.endpoint:
            from google.auth.credentials import AnonymousCredentials

            client = storage.Client(project=self.project or "local", credentials=AnonymousCredentials(),
                                    client_options={"api_endpoint": self.endpoint})
        else:
            client = storage.Client(project=self.project)
        return client.bucket(self.bucket_name)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        # one upload request: the object appears whole or not at all
        self.bucket.blob(self.check_key(key)).upload_from_string(data, content_type=content_type)

    def get_bytes(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self.bucket.blob(self.check_key(key)).download_as_bytes()
        except NotFound:
            raise BlobNotFound(f"no blob {key!r}") from None

    def exists(self, key: str) -> bool:
        return self.bucket.blob(self.check_key(key)).exists()

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self.bucket.blob(self.check_key(key)).delete()
        except NotFound:
            pass

    def list(self, prefix: str = "") -> list[str]:
        return sorted(b.name for b in self.bucket.client.list_blobs(self.bucket, prefix=prefix or None))
