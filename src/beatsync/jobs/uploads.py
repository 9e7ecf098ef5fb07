"""Files uploaded to ``POST /uploads``: a caller's media, named in a later create or analyze request
as ``upload://{sha256}{ext}`` (in place of a URL).

- Stored at :func:`beatsync.keys.caller_upload` (one folder per caller, content-addressed: the same
  bytes uploaded twice are one file), so a reference resolves only for the caller that uploaded it.
- Refused at once: an empty file, one over ``BEATSYNC_MAX_INPUT_BYTES``, one that is no audio or video
  container (:func:`sniff`, from its first bytes; the job still probes it fully), and more than
  ``(BEATSYNC_MAX_CLIPS + 1) * BEATSYNC_MAX_ACTIVE_JOBS`` files held by one caller (429).
- Kept until a job that used it ends (then removed unless another unfinished job uses it, as the
  analyze route's uploads), or an hour while no job uses it (the retention sweep).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import TYPE_CHECKING, BinaryIO

from .. import keys
from ..errors import InvalidRequest, MediaError, RateLimited, TooLarge

if TYPE_CHECKING:
    from ..container import Container

CHUNK = 1 << 20


def sniff(head: bytes) -> str | None:
    """The container family of a file from its first bytes (at least 16), or None when it is none
    of the audio and video containers FFmpeg reads that people upload."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "iso-bmff"  # MP4, MOV, M4A, 3GP
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # MKV, WebM
    if head.startswith(b"RIFF") and head[8:12] in (b"WAVE", b"AVI "):
        return "riff"
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head.startswith((b"OggS", b"fLaC", b"ID3", b"FLV", b"caff", b"#!AMR", b"YUV4MPEG2", b"DKIF",
                        b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "other"  # Ogg, FLAC, MP3 with tags, FLV, CAF, AMR, Y4M, IVF, ASF/WMV, MPEG-PS/ES
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mpeg-audio"  # MP3 / AAC (ADTS) frames
    if len(head) >= 1 and head[0] == 0x47:
        return "mpeg-ts"
    return None


def check_held(c: "Container", owner: str) -> None:
    """429 ``too_many_uploads`` when the caller already holds as many uploads as it may."""
    held = len(c.blobs.list(keys.caller_uploads(owner)))
    most = (c.settings.max_clips + 1) * c.settings.max_active_jobs
    if held >= most:
        raise RateLimited(f"you hold {held} uploads no finished job has used; the limit is {most}",
                          code="too_many_uploads", details={"retry_after": 60, "limit": most})


def store(c: "Container", owner: str, filename: str, stream: BinaryIO, declared_size: int | None = None) -> dict:
    """Read ``stream`` (at most the input limit) into the caller's uploads; the ``Upload`` answer."""
    limit = c.settings.max_input_bytes
    if declared_size is not None and declared_size > limit:
        raise TooLarge(f"{filename[:100]} is {declared_size} bytes; the limit is {limit}", details={"field": "file"})
    check_held(c, owner)
    digest, size, head = hashlib.sha256(), 0, b""
    fd, tmp = tempfile.mkstemp(prefix="beatsync-upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"{filename[:100]} is over the limit of {limit} bytes", details={"field": "file"})
                if len(head) < 64:
                    head += chunk[:64 - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise InvalidRequest(f"{filename[:100]} is empty", code="empty_upload", details={"field": "file"})
        if sniff(head) is None:
            raise MediaError(f"{filename[:100]} is not an audio or video file", code="unsupported_media",
                             details={"field": "file"})
        key = keys.caller_upload(owner, digest.hexdigest(), filename)
        c.blobs.put_file(key, tmp)  # again if there: its age (the retention sweep's clock) starts now
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return {"upload_url": keys.upload_ref(key), "filename": filename[:200], "size": size,
            "sha256": digest.hexdigest()}
