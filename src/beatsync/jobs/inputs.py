"""A job's inputs on this machine: fetched once into the blob store (keys from :mod:`beatsync.keys`),
copied from there into the job's work folder by every step or task that needs them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

from .. import keys
from ..errors import FetchCancelled, FetchFailed
from ..fetch import TooLarge, download
from .lifecycle import workdir
from .model import Job

if TYPE_CHECKING:
    from ..container import Container


def input_keys(job: Job) -> tuple[str, list[str]]:
    """``(audio key, [clip keys])``."""
    return keys.inputs(job.job_id, job.request)


def fetch(c: "Container", url: str, key: str, local: str, should_stop=None, uploads=None) -> None:
    """Bring ``url`` into the blob store at ``key`` (skipped if there) and into ``local``; a fetch is
    abandoned (FetchCancelled) within a second or so of ``should_stop()`` turning true. ``uploads``:
    the request's ``upload_keys`` (an ``upload://`` input is copied from its upload)."""
    if os.path.exists(local):
        return
    if c.blobs.exists(key):
        c.blobs.get_file(key, local)
        return
    if url.startswith(keys.UPLOAD_SCHEME):
        src = (uploads or {}).get(url)
        if src is None or not c.blobs.exists(src):
            raise FetchFailed(f"the upload {url[:120]} is gone: upload it again", code="source_not_found")
        c.blobs.get_file(src, local)
    elif url.startswith("gs://"):
        src = url[5:].partition("/")[2]
        size = c.blobs.size(src)
        if size > c.settings.max_input_bytes:
            raise TooLarge(f"{url} is {size} bytes; the limit is {c.settings.max_input_bytes}")
        c.blobs.get_file(src, local)
    else:
        download(url, local, c.fetch_policy, should_stop=should_stop)
    c.blobs.put_file(key, local)


#: inputs of one job fetched at once (the song and the clips, each within its own deadline)
FETCH_CONCURRENCY = 4


def local_inputs(c: "Container", job: Job, report, with_clips: bool,
                 should_stop: Callable[[], bool] | None = None) -> tuple[str, list[str]]:
    """Local paths of the song and (``with_clips``) the clips, fetched as needed: up to
    :data:`FETCH_CONCURRENCY` at once, so a job waits for its slowest input, not for their sum. The
    first failure stops the other fetches (within a second or so) and is raised; so does
    ``should_stop()`` turning true (read on this thread only: ``report`` and ``should_stop`` may use the
    job store, which stays on the caller's thread)."""
    import threading
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    work = workdir(job.job_id)
    audio_key, clip_keys = input_keys(job)
    req = job.request
    audio = os.path.join(work, os.path.basename(audio_key))
    if req.get("audio_key"):
        if not os.path.exists(audio):
            c.blobs.get_file(audio_key, audio)
        todo = []
    else:
        todo = [(req["audio_url"], audio_key, audio)]
    clips = [os.path.join(work, os.path.basename(key)) for key in clip_keys] if with_clips else []
    if with_clips:
        todo += list(zip(req["video_urls"], clip_keys, clips))
    stop = threading.Event()
    uploads = req.get("upload_keys")
    with ThreadPoolExecutor(max_workers=max(1, min(FETCH_CONCURRENCY, len(todo))),
                            thread_name_prefix=f"fetch-{job.job_id[:8]}") as pool:
        pending = {pool.submit(fetch, c, url, key, local, stop.is_set, uploads) for url, key, local in todo}
        done = 0
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for f in finished:
                    f.result()  # the first failure is raised (the others are stopped below)
                    done += 1
                    if with_clips:
                        report(10.0 * done / (len(todo) + 1), "downloading")
                if pending and should_stop is not None and should_stop():
                    raise FetchCancelled("the job was cancelled while its inputs were fetched")
        except BaseException:
            stop.set()  # the other fetches give up within a second or so; the pool waits for them
            raise
    return audio, clips
