"""The studio page at ``/studio``: a creator's client of the public API, as static files shipped in
the package (``beatsync/http/studio/``: HTML, CSS, one script; no CDN, no build step).

The page runs only its own script (no inline script) under the ``/docs`` policy, plus ``media-src``
for the video it plays (a signed link of this origin, or a ``blob:`` of a file the creator chose) and
``worker-src 'none'``; with a bucket as the blob store, the bucket's origin for the signed links. Everything it shows from the API is set as text, never as HTML.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ..errors import HttpError
from .docs import CSP as DOCS_CSP

FOLDER = Path(__file__).resolve().parent / "studio"
#: the files the page uses and their content types
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "studio.css": "text/css; charset=utf-8",
    "studio.js": "text/javascript; charset=utf-8",
}
CSP = DOCS_CSP + "; media-src 'self' blob:; worker-src 'none'"
GCS = "https://storage.googleapis.com"


def csp(settings) -> str:
    """The page's policy: :data:`CSP`, and where the outputs are in a bucket (``BEATSYNC_BLOB_STORE=gcs``)
    its signed links' origin for the video, the thumbnail and the EDL."""
    if settings.blob_store != "gcs":
        return CSP
    origin = urlsplit(settings.gcs_endpoint)._replace(path="", query="", fragment="").geturl() or GCS
    policy = CSP
    for directive in ("connect-src 'self'", "img-src 'self' data:", "media-src 'self' blob:"):
        policy = policy.replace(directive, f"{directive} {origin}")
    return policy


def read(name: str) -> tuple[bytes, str]:
    """``(bytes, content type)`` of one of the page's files (404 ``route_not_found`` for any other)."""
    if name not in ASSETS or not (FOLDER / name).is_file():
        raise HttpError(404, "route_not_found", f"no studio file {name[:100]}")
    return (FOLDER / name).read_bytes(), ASSETS[name]
