"""BlobStore on Google Cloud Storage. The client is built on first use, never at import."""

from __future__ import annotations

import functools

from ..errors import StoreUnavailable
from ..ports import BlobNotFound, BlobStore


def _transient(method):
    """GCS outages, throttling and broken connections become :class:`StoreUnavailable` (retry)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from google.api_core import exceptions as gexc

        try:
            return method(self, *args, **kwargs)
        except (gexc.ServerError, gexc.TooManyRequests, gexc.RetryError, ConnectionError, TimeoutError) as exc:
            raise StoreUnavailable(f"blob store unavailable: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # requests' connection errors, without importing requests at module load
            if type(exc).__module__.startswith(("requests", "urllib3", "google.auth")):
                raise StoreUnavailable(f"blob store unavailable: {type(exc).__name__}: {exc}") from None
            raise

    return wrapper


class GcsBlobStore(BlobStore):
    #: IAM permissions of each operation, as ``(permission, on)``: ``object`` = the object at the
    #: call's key (a grant conditioned on a key prefix covers it), ``bucket`` = the bucket (a listing:
    #: conditions on object names do not help), ``self`` = the component's own service account.
    #: An upload may replace an object, which also needs delete. tests/unit/test_permissions.py
    #: checks every component's calls against the roles Terraform grants it.
    PERMISSIONS = {
        "put_bytes": (("storage.objects.create", "object"), ("storage.objects.delete", "object")),
        "put_file": (("storage.objects.create", "object"), ("storage.objects.delete", "object")),
        "get_bytes": (("storage.objects.get", "object"),),
        "get_file": (("storage.objects.get", "object"),),
        "exists": (("storage.objects.get", "object"),),
        "size": (("storage.objects.get", "object"),),
        "delete": (("storage.objects.delete", "object"),),
        "list": (("storage.objects.list", "bucket"),),
        # signed by IAM signBlob as the component itself; the link then reads as that account
        "signed_url": (("iam.serviceAccounts.signBlob", "self"), ("storage.objects.get", "object")),
    }

    def __init__(self, bucket: str, *, project: str | None = None, endpoint: str | None = None,
                 signing_credentials=None):
        """``endpoint``: an emulator's URL (fake-gcs-server); anonymous credentials are used then.
        ``signing_credentials``: credentials that can sign (a service-account key); default: the
        client's own, signing through the IAM signBlob API when they hold no key (Cloud Run)."""
        self.bucket_name, self.project, self.endpoint = bucket, project, endpoint
        self._signing_credentials = signing_credentials

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

    @_transient
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        # one upload request: the object appears whole or not at all
        self.bucket.blob(self.check_key(key)).upload_from_string(data, content_type=content_type)

    @_transient
    def get_bytes(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self.bucket.blob(self.check_key(key)).download_as_bytes()
        except NotFound:
            raise BlobNotFound(f"no blob {key!r}") from None

    @_transient
    def exists(self, key: str) -> bool:
        return self.bucket.blob(self.check_key(key)).exists()

    @_transient
    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self.bucket.blob(self.check_key(key)).delete()
        except NotFound:
            pass

    @_transient
    def list(self, prefix: str = "") -> list[str]:
        return sorted(b.name for b in self.bucket.client.list_blobs(self.bucket, prefix=prefix or None))

    @_transient
    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> None:
        # resumable upload for big files; the object only appears once the upload is finalised
        self.bucket.blob(self.check_key(key)).upload_from_filename(path, content_type=content_type)

    @_transient
    def get_file(self, key: str, path: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self.bucket.blob(self.check_key(key)).download_to_filename(path)
        except NotFound:
            import os

            if os.path.exists(path):
                os.unlink(path)
            raise BlobNotFound(f"no blob {key!r}") from None

    @_transient
    def size(self, key: str) -> int:
        blob = self.bucket.get_blob(self.check_key(key))
        if blob is None:
            raise BlobNotFound(f"no blob {key!r}")
        return int(blob.size)

    @_transient
    def signed_url(self, key: str, expires_in: int) -> str:
        """A V4 signed GET URL. With a key file the signature is computed locally; on Cloud Run /
        Functions (metadata-server credentials, no key) it is made by IAM signBlob, which needs
        ``roles/iam.serviceAccountTokenCreator`` on the service account itself."""
        from datetime import timedelta

        blob = self.bucket.blob(self.check_key(key))
        kwargs = {"version": "v4", "expiration": timedelta(seconds=int(expires_in)), "method": "GET"}
        if self.endpoint:
            kwargs["api_access_endpoint"] = self.endpoint
        creds = self._signing_credentials
        if creds is None and self.endpoint:
            creds = self._signing_credentials = _ephemeral_credentials()  # the emulator checks no signature
        if creds is None:
            creds = self.bucket.client._credentials
            if not hasattr(creds, "sign_bytes") or not getattr(creds, "signer_email", None):
                import google.auth.transport.requests

                creds.refresh(google.auth.transport.requests.Request())
                kwargs["service_account_email"] = creds.service_account_email
                kwargs["access_token"] = creds.token
        kwargs["credentials"] = creds
        return blob.generate_signed_url(**kwargs)


def _ephemeral_credentials():
    """Throwaway service-account credentials with a fresh key, for an emulator endpoint only."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return service_account.Credentials.from_service_account_info({
        "type": "service_account", "project_id": "emulator", "private_key_id": "ephemeral",
        "private_key": pem, "client_email": "emulator@emulator.iam.gserviceaccount.com",
        "client_id": "0", "token_uri": "https://oauth2.googleapis.com/token"})
