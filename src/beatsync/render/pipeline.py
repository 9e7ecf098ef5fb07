"""The main job: song + clips + config -> video, thumbnail, EDL, OpenTimelineIO timeline and
beat map, side by side."""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable

from ..contracts import BeatMap, EditConfig, EditDecisionList
from ..errors import InvalidRequest
from ..ports import BlobStore

MAX_CLIPS = 20
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class MakeResult:
    video: str
    thumbnail: str
    edl_path: str
    otio_path: str
    beat_map_path: str
    edl: EditDecisionList
    beat_map: BeatMap
    file_size: int
    duration: float
    decoded_frames: int
    #: each extra timeline written (``timelines=``), and what the formats could not keep (one line each)
    timelines: tuple[str, ...] = ()
    timeline_warnings: tuple[str, ...] = ()


def side_files(out_path: str) -> tuple[str, str, str, str]:
    """Thumbnail, EDL, OpenTimelineIO and beat-map paths that belong to one video, named after its whole
    file name: ``out/a.mp4`` -> ``out/a.mp4.thumbnail.jpg``, ``out/a.mp4.edl.json``, ``out/a.mp4.otio``,
    ``out/a.mp4.beat_map.json``. Two outputs in one folder never share one (``a.mp4`` and ``a.webm``
    neither), so this is the only place that names them."""
    video = os.path.abspath(out_path)
    return f"{video}.thumbnail.jpg", f"{video}.edl.json", f"{video}.otio", f"{video}.beat_map.json"


def analyse_clips(clips: list[str], *, max_clip_pixels: int = 4096 * 2304,
                  progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
                  budget: float | None = None, cache: BlobStore | None = None) -> tuple[list, list]:
    """Probe the clips and analyse each one's motion and own shot boundaries: ``(probes, analyses)``.
    Each analysis decodes at most ``budget`` units' worth of frames (:func:`beatsync.render.motion.frame_limit`;
    default ``motion.DEFAULT_BUDGET``); with ``cache`` (a blob store), one already made for the same clip
    bytes, version and budget is read instead (:mod:`beatsync.render.clipcache`; ``frames`` 0).
    Clips are decoded in parallel threads (PyAV decodes outside the GIL), one per core up to 4."""
    from concurrent.futures import ThreadPoolExecutor

    from .encode import usable_cores
    from .motion import DEFAULT_BUDGET, MOTION_STEP, analyse_clip
    from .probe import probe_clip

    report = progress or (lambda pct, step: None)
    budget = DEFAULT_BUDGET if budget is None else budget
    probes = [probe_clip(c, max_pixels=max_clip_pixels) for c in clips]
    store = variant = None
    if cache is not None:
        from .clipcache import ClipAnalysisCache, clip_hash, variant_key

        store, variant = ClipAnalysisCache(cache), variant_key(MOTION_STEP, budget)

    def one(probe):
        if store is None:
            return analyse_clip(probe, should_stop=should_stop, budget=budget)
        digest = clip_hash(probe.path)
        bins = max(1, math.ceil(probe.duration / MOTION_STEP))
        hit = store.get(digest, variant, bins)
        if hit is not None:
            return hit
        made = analyse_clip(probe, should_stop=should_stop, budget=budget)
        store.put(digest, variant, made)
        return made

    workers = max(1, min(len(probes), usable_cores(), 4))
    analyses = []
    with ThreadPoolExecutor(workers, thread_name_prefix="clip-analysis") as pool:
        for a in pool.map(one, probes):
            analyses.append(a)
            report(100.0 * len(analyses) / len(probes), "motion")
    return probes, analyses


class ClipWork:
    """:func:`analyse_clips` running in a background thread (:func:`start_clip_analysis`); ``seconds``:
    how long it took (None until done)."""

    def __init__(self, clips: list[str], max_clip_pixels: int, budget: float | None = None,
                 cache: BlobStore | None = None):
        from concurrent.futures import ThreadPoolExecutor

        self._stop = threading.Event()
        self.seconds: float | None = None
        pool = ThreadPoolExecutor(1, thread_name_prefix="clips")
        self._future: Future = pool.submit(self._run, clips, max_clip_pixels, budget, cache)
        pool.shutdown(wait=False)  # nothing else is queued; the analysis runs until done or stopped

    def _run(self, clips, max_clip_pixels, budget, cache):
        started = time.monotonic()
        try:
            return analyse_clips(clips, max_clip_pixels=max_clip_pixels, should_stop=self._stop.is_set,
                                 budget=budget, cache=cache)
        finally:
            self.seconds = time.monotonic() - started

    def result(self) -> tuple[list, list]:
        """``(probes, analyses)``, waiting for them; raises what the analysis raised."""
        return self._future.result()

    def stop(self) -> None:
        """Abandon the analysis if it is still running (its result will not be used); returns at once,
        the decoding threads end within a few frames."""
        self._stop.set()


def start_clip_analysis(clips: list[str], *, max_clip_pixels: int = 4096 * 2304, budget: float | None = None,
                        cache: BlobStore | None = None) -> ClipWork:
    """:func:`analyse_clips` in a background thread, to run while the song is analysed (it does not
    need the beat map). Call ``.result()`` to use it; ``.stop()`` when it will not be used (an error,
    a cancel), so its threads do not decode on for nothing."""
    return ClipWork(clips, max_clip_pixels, budget, cache)


def plan_edit(beat_map: BeatMap, clips: list[str], config: EditConfig, *, max_clip_pixels: int = 4096 * 2304,
              progress: Progress | None = None, analysed: tuple[list, list] | None = None
              ) -> tuple[EditDecisionList, list]:
    """Probe the clips, score their motion, find their own shot boundaries (or take ``analysed``,
    :func:`analyse_clips`' answer) and plan the edit: ``(edl, probes)``."""
    from ..editing import plan

    probes, analyses = analysed or analyse_clips(clips, max_clip_pixels=max_clip_pixels, progress=progress)
    return plan(beat_map, clip_infos(probes, analyses), config), probes


def clip_infos(probes: list, analyses: list) -> list:
    """The planner's view of each clip (:class:`beatsync.editing.ClipInfo`) from its probe and analysis."""
    from ..editing import ClipInfo
    from .motion import normalise

    return [ClipInfo(i, os.path.basename(p.path), p.duration, m, p.keyframes, a.cuts, a.holds, a.looks)
            for i, (p, a, m) in enumerate(zip(probes, analyses, normalise([a.motion for a in analyses])))]


def make_video(
    song: str,
    clips: list[str],
    out_path: str,
    config: EditConfig,
    *,
    method: str = "beatnet",
    cache: BlobStore | None = None,
    max_audio_duration: float = 15 * 60.0,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    preset: str = "veryfast",
    max_clip_pixels: int = 4096 * 2304,
    workers: int = 1,
    allow_noncommercial: bool = False,
    song_url: str | None = None,
    clip_urls: list[str] | None = None,
    timelines: tuple[str, ...] | list[str] = (),
    clip_budget: float | None = None,
) -> MakeResult:
    """Analyse, probe, plan, render (:func:`render_edit`). ``workers > 1`` renders that many segments in
    parallel processes and joins them (:func:`beatsync.render.segments.render_parallel`): the same frames,
    cuts and audio timing.
    ``song_url`` / ``clip_urls`` name the media in the timelines (default: the local files); ``timelines``:
    more timeline files to write (:mod:`beatsync.render.timelines`, the extension decides the format).
    ``cache`` holds the song's beat map and the clips' analyses; ``clip_budget``: see :func:`analyse_clips`."""
    from ..analysis import analyze

    if not clips:
        raise InvalidRequest("at least one clip is needed", code="no_clips")
    if len(clips) > MAX_CLIPS:
        raise InvalidRequest(f"{len(clips)} clips; at most {MAX_CLIPS}", code="too_many_clips")
    report = progress or (lambda pct, step: None)
    report(0.0, "analyze")
    # meanwhile: it needs no beats
    clip_work = start_clip_analysis(clips, max_clip_pixels=max_clip_pixels, budget=clip_budget, cache=cache)
    try:
        beat_map = analyze(song, method, fps=config.output_fps, max_duration=max_audio_duration, cache=cache,
                           allow_noncommercial=allow_noncommercial)
        report(15.0, "probe")
        edl, probes = plan_edit(beat_map, clips, config, analysed=clip_work.result())
    finally:
        clip_work.stop()  # a no-op once it finished
    return render_edit(edl, beat_map, probes, song, out_path, should_stop=should_stop, preset=preset,
                       workers=workers, song_url=song_url, clip_urls=clip_urls, timelines=timelines,
                       progress=lambda pct, step: report(25.0 + 0.75 * pct, step))


def render_edit(
    edl: EditDecisionList,
    beat_map: BeatMap,
    probes: list,
    song: str,
    out_path: str,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    preset: str = "veryfast",
    workers: int = 1,
    song_url: str | None = None,
    clip_urls: list[str] | None = None,
    timelines: tuple[str, ...] | list[str] = (),
) -> MakeResult:
    """Render an edit already planned (``edl`` over ``probes``) and write its side files: the video,
    thumbnail, EDL, OpenTimelineIO timeline and beat map (:func:`side_files`)."""
    from .encode import render
    from ..contracts.edit import timeline_rate_problem
    from .timelines import format_of

    formats = [format_of(p) for p in timelines]  # refused before rendering
    for path, fmt in zip(timelines, formats):
        problem = timeline_rate_problem(fmt, edl.fps)
        if problem:
            raise InvalidRequest(f"{path}: {problem}", code="timeline_rate")
    report = progress or (lambda pct, step: None)
    thumbnail, edl_path, otio_path, bm_path = side_files(out_path)
    os.makedirs(os.path.dirname(thumbnail), exist_ok=True)
    if workers > 1:
        from .segments import render_parallel

        render = functools.partial(render_parallel, workers=workers)
    result = render(edl, probes, song, out_path, thumbnail_path=thumbnail, should_stop=should_stop, preset=preset,
                    progress=report)
    with open(edl_path, "w") as fh:
        fh.write(edl.to_json())
    with open(bm_path, "w") as fh:
        fh.write(beat_map.to_json())
    notes = write_timelines(edl, beat_map, timeline_media(song_url or song, clip_urls or [p.path for p in probes],
                                                          probes), [otio_path, *timelines], ["otio", *formats])
    report(100.0, "done")
    return MakeResult(video=out_path, thumbnail=thumbnail, edl_path=edl_path, otio_path=otio_path,
                      beat_map_path=bm_path, edl=edl, beat_map=beat_map, file_size=result.file_size,
                      duration=result.duration, decoded_frames=result.decoded_frames, timelines=tuple(timelines),
                      timeline_warnings=tuple(notes))


def timeline_media(song_url: str, clip_urls: list[str], probes: list | None = None,
                   rates: list[float] | None = None):
    """The media as the timelines name them: URLs (or local paths, written as file URLs), the clips'
    names (the URLs' file names) and their own frame rates (``rates``, else from ``probes``)."""
    from .timelines import Media

    return Media(song_url, list(clip_urls), clip_rates=list(rates or [p.fps for p in probes or []]))


def write_timelines(edl: EditDecisionList, beat_map: BeatMap, media, paths: list[str], formats: list[str]) -> list[str]:
    """Write each timeline; returns what the formats could not keep, without repeats."""
    from .timelines import write_timeline

    notes: list[str] = []
    for path, fmt in zip(paths, formats):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        notes += [n for n in write_timeline(edl, beat_map, media, path, fmt) if n not in notes]
    return notes
