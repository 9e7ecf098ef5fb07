"""One render split across processes or machines: cut the EDL into segments, render each one's
video alone, join them by stream copy and add the song's audio once.

- :func:`split` cuts at shot starts (never inside a shot), balanced by estimated work
  (:func:`shot_costs`: encoding, decoding including the frames decoded from the keyframe before
  each in-point, transitions). A shot that opens with a transition starts its segment with the
  whole transition (the segment also decodes the outgoing shot), so no transition is ever cut.
- :func:`render_segment` renders output frames ``[start, end)`` with the same encoder settings as a
  single render, video only, in the output's container; its first frame is an IDR frame and pts
  count from 0. Every output frame depends only on the EDL, so a segment's pictures are those a
  single render shows at the same frame numbers.
- :func:`merge` remuxes the segments' packets (no re-encode) with their timestamps moved by the
  segment's first frame number (B-frame reordering delay included: each segment's dts starts at
  minus the same delay, so dts stay strictly increasing across seams), copies the song's window
  encoded once beforehand (:func:`beatsync.render.encode.encode_audio`; encoded here if it was not),
  and writes the file atomically. Frame count, cut frames and audio timing are
  those of a single render; it checks every segment (frame count, codec parameters) and refuses a
  mismatch rather than write a broken file.
- :func:`render_parallel` runs the segments as local processes (bounded) and merges them:
  ``beatsync make --workers N``.
"""

from __future__ import annotations

import bisect
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Callable

import av

from ..contracts import EditDecisionList
from ..errors import RenderFailed
from . import transitions
from .encode import (AUDIO_BIT_RATE, AUDIO_FILE_EXT, RenderCancelled, RenderResult, _audio_stream, encode_audio,
                     render)
from .probe import ClipProbe

Progress = Callable[[float, str], None]

#: relative CPU cost of one output frame: encoding it, decoding one source frame of the output's
#: size (1080p H.264 decode runs ~2.5x faster than x264 veryfast encode here), blending a transition
ENCODE, DECODE, TRANSITION = 1.0, 0.4, 0.3


@dataclass(frozen=True)
class Segment:
    index: int
    start: int  # first output frame
    end: int  # one past the last

    @property
    def frames(self) -> int:
        return self.end - self.start


def _lead_frames(probe: ClipProbe, t: float) -> float:
    """Source frames decoded before time ``t`` becomes visible: from the keyframe before it."""
    kfs = probe.keyframes
    i = bisect.bisect_right(kfs, t + 1e-6)
    kf = kfs[i - 1] if i else 0.0
    return max(0.0, t - kf) * (probe.fps or 30.0)


def shot_costs(edl: EditDecisionList, probes: list[ClipProbe]) -> list[float]:
    """Estimated work per shot (in output-frame encodes): the planner's view of decode and encode."""
    out_px = edl.width * edl.height
    costs = []
    for i, s in enumerate(edl.shots):
        p = probes[s.clip]
        scale = p.width * p.height / out_px
        per_frame = ENCODE + DECODE * scale * max(1.0, (p.fps or edl.fps) / edl.fps)
        cost = s.frames * per_frame + DECODE * scale * _lead_frames(p, s.source_in)
        tf = _transition_frames(edl, i)
        if tf:
            cost += tf * TRANSITION
            if s.transition.style in transitions.NEEDS_OUTGOING:
                q = probes[edl.shots[i - 1].clip]
                cost += tf * DECODE * q.width * q.height / out_px
        costs.append(cost)
    return costs


def _transition_frames(edl: EditDecisionList, i: int) -> int:
    s = edl.shots[i]
    if i == 0 or s.transition.style == "cut":
        return 0
    return int(round(s.transition.duration * edl.fps))


def _boundary_penalty(edl: EditDecisionList, probes: list[ClipProbe] | None, i: int) -> float:
    """Extra work when a segment starts at shot ``i``: a transition that shows the outgoing shot
    makes the segment decode that shot too (from the keyframe before its frame)."""
    s = edl.shots[i]
    if not _transition_frames(edl, i) or s.transition.style not in transitions.NEEDS_OUTGOING:
        return 0.0
    prev = edl.shots[i - 1]
    if probes is None:
        return 30.0
    p = probes[prev.clip]
    t = prev.source_in + (s.start_frame - prev.start_frame) / edl.fps
    return DECODE * p.width * p.height / (edl.width * edl.height) * (_lead_frames(p, t) + 1)


def split(edl: EditDecisionList, costs: list[float], n: int,
          probes: list[ClipProbe] | None = None) -> list[Segment]:
    """At most ``n`` segments of similar estimated work, each starting at a shot start."""
    shots = edl.shots
    n = max(1, min(n, len(shots)))
    prefix = [0.0]
    for c in costs:
        prefix.append(prefix[-1] + c)
    total = prefix[-1]
    starts = [0]
    for k in range(1, n):
        target = total * k / n
        lo, hi = starts[-1] + 1, len(shots) - (n - k)
        if lo > hi:
            break
        best = min(range(lo, hi + 1),
                   key=lambda j: abs(prefix[j] - target) + _boundary_penalty(edl, probes, j))
        starts.append(best)
    return _segments(edl, starts)


def segments_at(edl: EditDecisionList, frames: list[int]) -> list[Segment]:
    """Segments starting at the shot start nearest each requested frame. A frame inside a
    transition moves to the start of the shot that opens with it: the transition stays whole in
    the later segment."""
    shot_starts = [s.start_frame for s in edl.shots]
    starts = {0}
    for f in frames:
        i = bisect.bisect_right(shot_starts, f) - 1
        s = edl.shots[i]
        if f < s.start_frame + _transition_frames(edl, i) or i + 1 >= len(shot_starts):
            starts.add(i)
        else:
            starts.add(i if f - s.start_frame <= shot_starts[i + 1] - f else i + 1)
    return _segments(edl, sorted(starts))


def _segments(edl: EditDecisionList, shot_indices: list[int]) -> list[Segment]:
    frames = [edl.shots[i].start_frame for i in shot_indices] + [edl.total_frames]
    return [Segment(k, a, b) for k, (a, b) in enumerate(zip(frames, frames[1:])) if b > a]


#: CPU s per second of 1080p30 output, one process (benchmarks/parallel_render.py: 0.81-0.83)
RENDER_CPU_PER_SECOND = 0.83
#: CPU s each task adds whatever its length: interpreter and imports, its decoders starting at a
#: keyframe, x264 filling and draining its lookahead (benchmarks/parallel_render.py: about 1)
TASK_OVERHEAD_CPU = 1.0
#: CPU s per second a compose task gives a render: 4 vCPU at 70 % use (assumed, as in the prediction of
#: docs/parallel-render.md: 3 x264 frame threads and the decoding thread)
TASK_CPU_RATE = 4 * 0.7
#: share of the render's CPU that scales with the output's pixels per second (fitted to two measured
#: points: 720p30 costs 0.729 of 1080p30, benchmarks/measurements.json; the rest is the sources' decoding)
PIXEL_SHARE = 0.49


def task_render_seconds(output_seconds: float, tasks: int, pixels_per_second: float = 1920 * 1080 * 30) -> float:
    """Predicted wall seconds of the slowest of ``tasks`` equal tasks rendering ``output_seconds`` of
    output at ``pixels_per_second`` (width x height x fps), each task's overhead counted."""
    scale = (1 - PIXEL_SHARE) + PIXEL_SHARE * pixels_per_second / (1920 * 1080 * 30)
    cpu = output_seconds / max(1, tasks) * RENDER_CPU_PER_SECOND * scale + TASK_OVERHEAD_CPU
    return cpu / TASK_CPU_RATE


def task_count(output_seconds: float, seconds_per_task: float, max_tasks: int, target_seconds: float | None = None,
               pixels_per_second: float = 1920 * 1080 * 30) -> int:
    """Tasks for ``output_seconds`` of video, sized for the deadline.

    ``seconds_per_task`` is the floor of a segment's length: at most one task per ``seconds_per_task`` of
    output, at most ``max_tasks``. Within that, the fewest tasks whose render is predicted to take at
    most ``target_seconds`` (:func:`task_render_seconds`; every task adds its overhead, so a task more
    than the deadline needs costs CPU for nothing); when no count within the bounds meets the target,
    the most. ``target_seconds=None``: the most (one task per ``seconds_per_task``)."""
    most = max(1, min(int(max_tasks), math.ceil(output_seconds / max(1e-6, seconds_per_task) - 1e-9)))
    if target_seconds is None:
        return most
    return next((n for n in range(1, most + 1)
                 if task_render_seconds(output_seconds, n, pixels_per_second) <= target_seconds), most)


def render_segment(edl: EditDecisionList, probes: list[ClipProbe], segment: Segment, out_path: str, *,
                   thumbnail_path: str | None = None, progress: Progress | None = None,
                   should_stop: Callable[[], bool] | None = None, preset: str = "veryfast",
                   threads: int | None = None) -> RenderResult:
    """The segment's video alone (same encoder settings as a single render), written atomically."""
    return render(edl, probes, "", out_path, thumbnail_path=thumbnail_path, progress=progress,
                  should_stop=should_stop, preset=preset, frames=(segment.start, segment.end), with_audio=False,
                  threads=threads)


@dataclass(frozen=True)
class MergeResult:
    path: str
    frames: int
    duration: float
    file_size: int


def _frame_number(ts: int, time_base: Fraction, fps: int) -> int:
    return int(round(Fraction(ts) * time_base * fps))


def _encoded_packets(a, frames):
    """The packets of ``frames`` encoded by ``a`` (flushed at the end)."""
    for af in frames:
        yield from a.encode(af)
    yield from a.encode(None)


def merge(edl: EditDecisionList, song: str | None, parts: list[tuple[Segment, str]], out_path: str, *,
          audio: str | None = None) -> MergeResult:
    """Join the segment files (in order, covering every frame) by stream copy with the song's window
    and write ``out_path`` atomically. ``audio``: that window already encoded
    (:func:`beatsync.render.encode.encode_audio`), whose packets are copied; else (``None``) the
    window is encoded here from ``song``, as a single render encodes it."""
    fps = edl.fps
    parts = sorted(parts, key=lambda p: p[0].start)
    covered = [0] + [s.end for s, _ in parts]
    if [s.start for s, _ in parts] != covered[:-1] or covered[-1] != edl.total_frames:
        raise RenderFailed(f"segments {[(s.start, s.end) for s, _ in parts]} do not cover "
                           f"frames 0-{edl.total_frames}")
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".merge-", suffix="." + edl.output_format)
    os.close(fd)
    tb = Fraction(1, fps)
    encoded = None
    try:
        options = {"movflags": "+faststart"} if edl.output_format == "mp4" else {}
        if audio is not None:
            encoded = av.open(audio)
            if not encoded.streams.audio:
                raise RenderFailed("the encoded audio has no audio stream")
        with av.open(tmp, "w", format=edl.output_format, options=options) as out:
            v = params = None
            a = None
            packets = iter(())
            audio_time, audio_done = 0.0, False

            def audio_until(t: float) -> None:
                """Mux audio packets until they reach ``t`` s (interleaving, flat memory)."""
                nonlocal audio_time, audio_done
                while not audio_done and audio_time <= t:
                    q = next(packets, None)
                    if q is None:
                        audio_done = True
                        break
                    if q.pts is not None:
                        audio_time = float((q.pts + (q.duration or 0)) * q.time_base)
                    q.stream = a
                    out.mux(q)

            last_dts = None
            for seg, path in parts:
                with av.open(path) as src:
                    s = src.streams.video[0]
                    here = (s.codec_context.name, s.codec_context.width, s.codec_context.height,
                            bytes(s.codec_context.extradata or b""))
                    if v is None:
                        v, params = out.add_stream_from_template(s), here
                        if encoded is not None:  # copied: the packets as encoded, priming and end trim included
                            a = out.add_stream_from_template(encoded.streams.audio[0])
                            a.bit_rate = AUDIO_BIT_RATE[edl.output_format]  # the encoder's, not the copy's average
                            packets = (q for q in encoded.demux(encoded.streams.audio[0]) if q.size)
                        else:
                            a, frames = _audio_stream(out, edl, song)
                            packets = _encoded_packets(a, frames)
                    elif here != params:
                        raise RenderFailed(f"segment {seg.index}: codec parameters differ from "
                                           "segment 0; they cannot be joined by stream copy")
                    count = 0
                    for p in src.demux(s):
                        if p.size == 0 or p.pts is None:
                            continue
                        pts = _frame_number(p.pts, s.time_base, fps) + seg.start
                        dts = (_frame_number(p.dts, s.time_base, fps) if p.dts is not None else pts - seg.start) \
                            + seg.start
                        if last_dts is not None and dts <= last_dts:
                            raise RenderFailed(f"segment {seg.index}: decode timestamps overlap the "
                                               "previous segment")
                        last_dts = dts
                        p.stream = v
                        p.time_base = tb
                        p.pts, p.dts, p.duration = pts, dts, 1
                        out.mux(p)
                        count += 1
                        audio_until((dts + 2) / fps)  # the audio just ahead of the video
                    if count != seg.frames:
                        raise RenderFailed(f"segment {seg.index}: {count} frames, "
                                           f"{seg.frames} planned")
            audio_until(math.inf)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        if encoded is not None:
            encoded.close()
    return MergeResult(path=out_path, frames=edl.total_frames, duration=edl.total_frames / fps,
                       file_size=os.path.getsize(out_path))


# -- local processes -------------------------------------------------------------------------------

_shared: dict = {}


def _init_worker(done, stop) -> None:
    _shared["done"], _shared["stop"] = done, stop


def _segment_worker(edl_json: str, probes: list[ClipProbe], segment: Segment, path: str, thumb: str,
                    preset: str, threads: int | None = None) -> dict:
    import resource

    edl = EditDecisionList.model_validate_json(edl_json)
    done, stop = _shared["done"], _shared["stop"]

    def progress(pct: float, step: str) -> None:
        done[segment.index] = segment.frames * pct / 100.0

    t0 = time.process_time()
    r = render_segment(edl, probes, segment, path, thumbnail_path=thumb, progress=progress,
                       should_stop=lambda: bool(stop.value), preset=preset, threads=threads)
    return {"frames": r.frames, "thumbnail_score": r.thumbnail_score, "decoded_frames": r.decoded_frames,
            "cpu_s": time.process_time() - t0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


@dataclass(frozen=True)
class ParallelResult(RenderResult):
    segments: tuple = ()  # per segment: asdict(Segment) + the worker's report
    merge_cpu_s: float = 0.0
    audio_cpu_s: float = 0.0  # the song's window encoded while the segments render (off the merge)


def render_parallel(edl: EditDecisionList, probes: list[ClipProbe], song: str, out_path: str, *, workers: int,
                    tasks: int | None = None, segments: list[Segment] | None = None,
                    thumbnail_path: str | None = None, progress: Progress | None = None,
                    should_stop: Callable[[], bool] | None = None, preset: str = "veryfast",
                    threads: int | None = None) -> ParallelResult:
    """Render ``edl`` as segments in up to ``workers`` local processes, the song's window encoded
    meanwhile (a thread of this process: :func:`beatsync.render.encode.encode_audio`), then merge them
    (``threads``: each segment's encoder threads, default :func:`beatsync.render.encode.encoder_threads`)."""
    import multiprocessing
    import threading
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    segs = segments or split(edl, shot_costs(edl, probes), tasks or workers, probes)
    report = progress or (lambda pct, step: None)
    folder = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(out_path)), prefix=".segments-")
    ctx = multiprocessing.get_context("spawn")  # no fork of a threaded server
    done, stop = ctx.Array("d", len(segs), lock=False), ctx.Value("b", 0, lock=False)
    edl_json = edl.to_json(indent=None)
    reports: dict[int, dict] = {}
    audio_path = os.path.join(folder, f"audio.{AUDIO_FILE_EXT[edl.output_format]}")
    audio: dict = {}

    def encode_song() -> None:
        t0 = time.thread_time()
        try:
            encode_audio(edl, song, audio_path, should_stop=lambda: bool(stop.value))
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            audio["error"] = exc
        audio["cpu_s"] = time.thread_time() - t0

    encoder = threading.Thread(target=encode_song, name="encode-audio", daemon=True)
    try:
        encoder.start()
        paths = {s.index: os.path.join(folder, f"seg-{s.index:03d}.{edl.output_format}") for s in segs}
        thumbs = {s.index: os.path.join(folder, f"thumb-{s.index:03d}.jpg") for s in segs}
        with ProcessPoolExecutor(max_workers=max(1, min(workers, len(segs))), mp_context=ctx,
                                 initializer=_init_worker, initargs=(done, stop)) as pool:
            futures = {pool.submit(_segment_worker, edl_json, probes, s, paths[s.index], thumbs[s.index], preset,
                                   threads): s
                       for s in segs}
            pending = set(futures)
            try:
                while pending:
                    finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for f in finished:
                        reports[futures[f].index] = f.result()  # a failed segment raises here
                    report(97.0 * sum(done[:]) / edl.total_frames, "render")
                    if should_stop is not None and should_stop():
                        stop.value = 1
            except BaseException:
                stop.value = 1
                for f in pending:
                    f.cancel()
                raise
        if stop.value:
            raise RenderCancelled("render cancelled")
        encoder.join()
        if "error" in audio:
            raise audio["error"]
        report(97.0, "merge")
        t0 = time.process_time()
        merged = merge(edl, None, [(s, paths[s.index]) for s in segs], out_path, audio=audio_path)
        merge_cpu = time.process_time() - t0
        best = max(segs, key=lambda s: reports[s.index]["thumbnail_score"])
        if thumbnail_path is not None and reports[best.index]["thumbnail_score"] >= 0:
            shutil.copyfile(thumbs[best.index], thumbnail_path)
        report(100.0, "render")
        return ParallelResult(path=out_path, frames=merged.frames, duration=merged.duration,
                              file_size=merged.file_size,
                              decoded_frames=sum(r["decoded_frames"] for r in reports.values()),
                              thumbnail_score=reports[best.index]["thumbnail_score"],
                              segments=tuple({**asdict(s), **reports[s.index]} for s in segs),
                              merge_cpu_s=merge_cpu, audio_cpu_s=audio["cpu_s"])
    finally:
        if encoder.is_alive():
            stop.value = 1  # the encoder stops within a second of audio
            encoder.join()
        shutil.rmtree(folder, ignore_errors=True)


def segments_json(segs: list[Segment]) -> list[dict]:
    return [asdict(s) for s in segs]


def segments_from_json(data: list[dict]) -> list[Segment]:
    return [Segment(**d) for d in data]


__all__ = ["MergeResult", "ParallelResult", "Segment", "merge", "render_parallel", "render_segment",
           "segments_at", "segments_from_json", "segments_json", "shot_costs", "split", "task_count",
           "task_render_seconds"]
