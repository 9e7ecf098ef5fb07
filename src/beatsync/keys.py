"""The blob-key layout, in one place. Every key a job reads or writes is made here:

- ``inputs/audio/{job_id}/audio{ext}``, ``inputs/video/{job_id}/clip_{i}{ext}``: fetched inputs
  (removed when the job ends; the bucket's lifecycle rule keeps ``inputs/`` 30 days at most)
- ``inputs/uploads/{sha256}{ext}``: an uploaded song (shared by the jobs that upload the same bytes)
- ``inputs/uploads/{caller}/{sha256}{ext}``: a file uploaded to ``POST /uploads``, named in requests as
  ``upload://{sha256}{ext}`` by the caller that uploaded it (``caller``: a digest of the caller's identity)
- ``outputs/{job_id}/...``: the results (``output|preview.{fmt}``, ``thumbnail.jpg``, ``edl.json``,
  ``edit.otio``, ``edit.xml|fcpxml|edl`` when asked, ``beat_map.json``; ``result.json`` last, the completion marker)
- ``temp/{job_id}/...``: a parallel render's plan, the song's encoded audio, segments and task progress
- ``cache/beat_maps/{audio_hash}/{variant}.json``: analysed songs
- ``cache/clip_analysis/{clip_hash}/{variant}.json``: the clips' planning analysis (motion, own shots)

The top-level folders are also what the retention rules know (terraform/storage.tf and
:func:`beatsync.jobs.storage.sweep`). Pure functions, no imports from the rest of beatsync.
"""

from __future__ import annotations

import hashlib
import os.path
import re
from typing import Any, Mapping
from urllib.parse import urlsplit

INPUTS, OUTPUTS, TEMP, CACHE = "inputs", "outputs", "temp", "cache"
#: the top-level folders the retention sweep ages out
RETAINED = (TEMP, INPUTS, OUTPUTS)
BEAT_MAP_CACHE = f"{CACHE}/beat_maps"
CLIP_ANALYSIS_CACHE = f"{CACHE}/clip_analysis"
RESULT = "result.json"


def ext(name: str) -> str:
    """A file name's extension, lower case, if it is a plausible one (``.mp4``), else ``.bin``."""
    e = os.path.splitext(name or "")[1].lower()
    return e if 1 < len(e) <= 6 and e[1:].isalnum() else ".bin"


def _url_ext(url: str | None) -> str:
    if url and url.startswith(UPLOAD_SCHEME):
        return ext(url)
    return ext(urlsplit(url).path if url else "")


# -- inputs ---------------------------------------------------------------------------------------

def upload(digest: str, filename: str) -> str:
    return f"{INPUTS}/uploads/{digest}{ext(filename)}"


#: how a request names a file uploaded to ``POST /uploads``
UPLOAD_SCHEME = "upload://"
_UPLOAD_REF = re.compile(r"upload://([0-9a-f]{64})(\.[a-z0-9]{1,5})\Z")


def caller_upload(owner: str, digest: str, filename: str) -> str:
    """Where a caller's upload is stored (one folder per caller: another caller's reference never
    resolves to it)."""
    e = ext(filename)
    return f"{caller_uploads(owner)}{digest}{e if re.fullmatch(r'[.][a-z0-9]{1,5}', e) else '.bin'}"


def caller_uploads(owner: str) -> str:
    return f"{INPUTS}/uploads/{hashlib.sha256(owner.encode()).hexdigest()[:24]}/"


def upload_ref(key: str) -> str:
    """The ``upload://`` reference of a stored upload (its file name)."""
    return UPLOAD_SCHEME + key.rsplit("/", 1)[-1]


def upload_key(owner: str, ref: str) -> str | None:
    """The key ``ref`` (``upload://{sha256}{ext}``) names for ``owner``; None if it is not one."""
    m = _UPLOAD_REF.match(ref)
    if m is None:
        return None
    return f"{caller_uploads(owner)}{m.group(1)}{m.group(2)}"


def uploads_of(request: Mapping[str, Any]) -> set[str]:
    """The uploaded files a job's request uses (its ``audio_key``, the keys of its ``upload://`` inputs)."""
    out = set((request.get("upload_keys") or {}).values())
    if request.get("audio_key"):
        out.add(request["audio_key"])
    return out


def input_prefixes(job_id: str) -> tuple[str, str]:
    """The folders of a job's own fetched inputs (an upload is shared, and not among them)."""
    return f"{INPUTS}/audio/{job_id}/", f"{INPUTS}/video/{job_id}/"


def input_owner(key: str) -> str | None:
    """The job whose fetched input ``key`` is (``inputs/audio/{id}/...``), else None (an upload, or
    not an input)."""
    parts = key.split("/")
    return parts[2] if len(parts) >= 4 and parts[0] == INPUTS and parts[1] in ("audio", "video") else None


def is_upload(key: str) -> bool:
    return key.startswith(f"{INPUTS}/uploads/")


def inputs(job_id: str, request: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``(audio key, [clip keys])`` of a job's request: its upload, or where its URLs are fetched to."""
    audio_dir, video_dir = input_prefixes(job_id)
    audio = request.get("audio_key") or f"{audio_dir}audio{_url_ext(request.get('audio_url'))}"
    clips = [f"{video_dir}clip_{i}{_url_ext(u)}" for i, u in enumerate(request.get("video_urls") or [])]
    return audio, clips


def input_field(name: str) -> str | None:
    """The request field of a job's input file ``name`` (``.../clip_2.mp4``: ``video_urls.2``;
    ``.../audio.wav``: ``audio_url``), else None."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    m = re.fullmatch(r"clip_([0-9]{1,3})[.][A-Za-z0-9]+", base)
    if m:
        return f"video_urls.{int(m.group(1))}"
    return "audio_url" if re.fullmatch(r"audio[.][A-Za-z0-9]+", base) else None


# -- outputs --------------------------------------------------------------------------------------

def outputs(job_id: str) -> str:
    return f"{OUTPUTS}/{job_id}/"


def output(job_id: str, name: str) -> str:
    return outputs(job_id) + name


def result(job_id: str) -> str:
    """The completion marker, written after every other output."""
    return output(job_id, RESULT)


def beat_map(job_id: str) -> str:
    return output(job_id, "beat_map.json")


def timeline(job_id: str, extension: str) -> str:
    """A timeline for an editor: ``outputs/{job_id}/edit.otio`` (``extension`` ".otio"), ``edit.xml``, ..."""
    return output(job_id, "edit" + extension)


# -- temp (parallel render) -------------------------------------------------------------------------

def temp(job_id: str) -> str:
    return f"{TEMP}/{job_id}/"


def plan(job_id: str) -> str:
    return temp(job_id) + "plan.json"


def compose_execution(job_id: str) -> str:
    """The compose execution the analyze step started before the plan (its handle and task count)."""
    return temp(job_id) + "execution.json"


def song_audio(job_id: str, extension: str) -> str:
    """The song's window encoded once for a parallel render's merge (``audio.m4a`` / ``audio.webm``)."""
    return temp(job_id) + f"audio.{extension}"


def segment(job_id: str, count: int, index: int, extension: str) -> str:
    return temp(job_id) + f"seg-{count:03d}-{index:03d}.{extension}"


def task_progress_prefix(job_id: str, count: int) -> str:
    return temp(job_id) + f"progress-{count:03d}-"


def task_progress(job_id: str, count: int, index: int) -> str:
    return task_progress_prefix(job_id, count) + f"{index:03d}.json"


# -- cache ----------------------------------------------------------------------------------------

def cached_beat_map(audio_hash: str, variant: str) -> str:
    return f"{BEAT_MAP_CACHE}/{audio_hash}/{variant}.json"


def cached_clip_analysis(clip_hash: str, variant: str) -> str:
    return f"{CLIP_ANALYSIS_CACHE}/{clip_hash}/{variant}.json"


def is_cache(key: str) -> bool:
    return key.startswith(CACHE + "/")
