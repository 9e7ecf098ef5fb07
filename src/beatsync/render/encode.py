"""Render an edit decision list: decode what is shown, transition, encode, mux with the song.

Streaming end to end: one output frame at a time, the song's audio encoded alongside it, so
memory does not grow with the song's length. H.264 (libx264) + AAC in mp4, VP9 + Opus in webm.
The first audio sample plays with the first video frame: audio is cut from the song by
timestamps (``atrim``) and starts at pts 0; the encoder's priming samples are signalled by the
container (mp4 edit list, Opus pre-skip), which players and FFmpeg honour. The last audio frame is
as short as the window leaves it (not padded), so the audio ends at the window's end.
:func:`encode_audio` encodes the window alone, as a render does, for a parallel render's merge.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import av

from ..contracts import EditDecisionList
from ..errors import MediaError, RenderCancelled  # noqa: F401 - RenderCancelled: re-export
from ..media import decode_tolerant
from . import transitions
from .frames import ReaderPool
from .probe import ClipProbe

Progress = Callable[[float, str], None]
AUDIO_RATE = 48000
#: the audio's bit rate by output format: AAC in mp4, Opus in webm
AUDIO_BIT_RATE = {"mp4": 192000, "webm": 160000}
#: Most encoder threads of one render. x264 picks 1.5 x the cores by default (6 on a 4 vCPU Cloud
#: Run task) and holds about 20 MB per frame thread at 1080p; 3 frame threads leave a 4 vCPU task's
#: fourth core to decoding (benchmarks/parallel_render.py; docs/parallel-render.md#memory).
ENCODER_MAX_THREADS = 3
#: x264 options beyond preset and CRF. sync-lookahead (default: threads + B-frames) only sizes the
#: buffer in front of the lookahead thread: 2 gives the same bitstream with 5 fewer 1080p frames held.
X264_PARAMS = "sync-lookahead=2"


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota where one is
    set (a container's vCPU limit, which the affinity may not show)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return cores


def encoder_threads() -> int:
    """Threads for the video encoder: the cores this process may use, at most ENCODER_MAX_THREADS."""
    return min(usable_cores(), ENCODER_MAX_THREADS)


@dataclass(frozen=True)
class RenderResult:
    path: str
    frames: int
    duration: float
    file_size: int
    decoded_frames: int
    #: the chosen thumbnail's score (-1: no candidate frame in the range rendered)
    thumbnail_score: float = -1.0


def _video_stream(out, edl: EditDecisionList, preset: str, crf: int, threads: int | None = None):
    if edl.output_format == "mp4":
        v = out.add_stream("libx264", rate=edl.fps, options={"crf": str(crf), "preset": preset,
                                                              "x264-params": X264_PARAMS})
    else:
        v = out.add_stream("libvpx-vp9", rate=edl.fps, options={
            "crf": str(crf + 10), "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"})
    v.width, v.height, v.pix_fmt = edl.width, edl.height, "yuv420p"
    v.time_base = Fraction(1, edl.fps)
    v.codec_context.time_base = Fraction(1, edl.fps)
    v.thread_type = "FRAME" if edl.output_format == "mp4" else "SLICE"
    v.codec_context.thread_count = threads or encoder_threads()
    v.codec_context.color_range = 1  # limited (tv)
    return v


def _audio_frames(song: str, start: float, end: float, frame_size: int):
    """The song between ``start`` and ``end`` s as stereo fltp 48 kHz frames of ``frame_size``
    samples, pts counted from 0 (trimmed by timestamps, sample-accurate)."""
    try:
        c = av.open(song, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise MediaError(f"song: cannot be opened ({exc})", code="corrupt_media") from None
    try:
        if not c.streams.audio:
            raise MediaError("song: no audio track", code="no_audio_stream")
        s = c.streams.best("audio") or c.streams.audio[0]
        g = av.filter.Graph()
        src = g.add_abuffer(template=s)
        chain = [src,
                 g.add("atrim", f"start={start:.6f}:end={end:.6f}"),
                 g.add("asetpts", "PTS-STARTPTS"),
                 g.add("aresample", f"{AUDIO_RATE}"),
                 g.add("aformat", f"sample_fmts=fltp:sample_rates={AUDIO_RATE}:channel_layouts=stereo"),
                 g.add("asetnsamples", f"n={frame_size}:p=0"),
                 g.add("abuffersink")]
        g.link_nodes(*chain).configure()
        if start > 1.0:
            c.seek(int((start - 1.0) / s.time_base), stream=s, backward=True)
        n = 0
        total = int(round((end - start) * AUDIO_RATE))

        def drain():
            nonlocal n
            while True:
                try:
                    f = g.pull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    return
                f.pts = n
                f.time_base = Fraction(1, AUDIO_RATE)
                n += f.samples
                yield f

        for frame in decode_tolerant(c, s):
            g.push(frame)
            yield from drain()
            if n >= total:
                break
        try:
            g.push(None)
        except av.error.FFmpegError:
            pass
        yield from drain()
    finally:
        c.close()


def _audio_stream(out, edl: EditDecisionList, song: str):
    """Add the song's audio stream to ``out``; return it and the window's frames to encode."""
    a = out.add_stream("aac" if edl.output_format == "mp4" else "libopus", rate=AUDIO_RATE, layout="stereo")
    a.bit_rate = AUDIO_BIT_RATE[edl.output_format]
    a.time_base = Fraction(1, AUDIO_RATE)
    frame_size = 1024 if edl.output_format == "mp4" else 960  # AAC / Opus (20 ms) frame sizes
    return a, _audio_frames(song, edl.song.start, edl.song.end, frame_size)


#: the extension of the song's window encoded alone (:func:`encode_audio`): an mp4 render's AAC in an
#: mp4 file, a webm render's Opus in webm (each the output's own container, so the merge copies its packets)
AUDIO_FILE_EXT = {"mp4": "m4a", "webm": "webm"}


def encode_audio(edl: EditDecisionList, song: str, out_path: str, *,
                 should_stop: Callable[[], bool] | None = None) -> str:
    """The song's window of ``edl`` encoded alone, by the encoder a render uses with the same settings
    and frames (:func:`_audio_stream`), into ``out_path`` (the output's container, audio only, written
    atomically). A parallel render's merge copies these packets (:func:`beatsync.render.segments.merge`)
    instead of encoding: the same packets, so the same samples, as a render that encodes in place.
    ``should_stop`` is asked every second of audio or so (:class:`RenderCancelled`)."""
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".audio-", suffix="." + AUDIO_FILE_EXT[edl.output_format])
    os.close(fd)
    try:
        with av.open(tmp, "w", format=edl.output_format) as out:
            a, frames = _audio_stream(out, edl, song)
            for i, af in enumerate(frames):
                if should_stop is not None and i % 50 == 0 and should_stop():
                    raise RenderCancelled("render cancelled")
                for p in a.encode(af):
                    out.mux(p)
            for p in a.encode(None):
                out.mux(p)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out_path


def _luma_spread(frame: av.VideoFrame) -> float:
    y = frame.to_ndarray()[: frame.height : 8, ::8]
    return float(y.std()) + 0.25 * float(y.mean())


def render(
    edl: EditDecisionList,
    probes: list[ClipProbe],
    song: str,
    out_path: str,
    *,
    thumbnail_path: str | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    preset: str = "veryfast",
    crf: int = 23,
    frames: tuple[int, int] | None = None,
    with_audio: bool = True,
    threads: int | None = None,
) -> RenderResult:
    """Render ``edl`` to ``out_path`` (written atomically: a temporary file, then renamed).

    ``frames=(start, end)`` renders only output frames ``start <= n < end`` (a segment of a parallel
    render, :mod:`beatsync.render.segments`): the same pictures, the first one an IDR frame, pts
    counted from 0; ``with_audio=False`` writes the video stream only. ``threads``: encoder threads
    (default :func:`encoder_threads`)."""
    fps = edl.fps
    first, stop = frames if frames is not None else (0, edl.total_frames)
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".render-", suffix="." + edl.output_format)
    os.close(fd)
    crops = None
    if edl.fit == "smart":
        from .reframe import plan_crops

        crops = plan_crops(edl, probes, should_stop)
    pool = ReaderPool(probes, edl.width, edl.height, edl.fit, crops=crops)
    # thumbnail candidates: the middle of each shot in the most energetic part (scored as we go)
    candidates = {(s.start_frame + s.end_frame) // 2 for s in edl.shots if s.section in ("chorus", "drop")}
    candidates |= {(s.start_frame + s.end_frame) // 2 for s in edl.shots[:: max(1, len(edl.shots) // 8)]}
    best_thumb: tuple[float, object | None] = (-1.0, None)
    try:
        with av.open(tmp, "w", format=edl.output_format, options={"movflags": "+faststart"} if edl.output_format == "mp4" else {}) as out:
            v = _video_stream(out, edl, preset, crf, threads)
            a, audio = _audio_stream(out, edl, song) if with_audio else (None, iter(()))
            audio_done = not with_audio
            audio_time = 0.0
            punch_frames = max(2, int(round(transitions.PUNCH_SECONDS * fps)))
            shot_iter = iter(edl.shots)
            shot = next(shot_iter)
            prev = None
            for n in range(first, stop):
                while n >= shot.end_frame:
                    prev, shot = shot, next(shot_iter)
                if should_stop is not None and n % max(1, fps // 2) == 0 and should_stop():
                    raise RenderCancelled("render cancelled")
                k = n - shot.start_frame
                frame = pool.frame(shot.clip, shot.source_in + k / fps, owner=shot.index)
                trans_frames = int(round(shot.transition.duration * fps))
                if prev is not None and k < trans_frames and shot.transition.style != "cut":
                    outgoing = None
                    if shot.transition.style in transitions.NEEDS_OUTGOING:
                        outgoing = pool.frame(prev.clip, prev.source_in + (n - prev.start_frame) / fps, owner=prev.index)
                    frame = transitions.apply(shot.transition.style, k, trans_frames, frame, outgoing, seed=shot.index)
                for accent in shot.accents:
                    if 0 <= n - accent < punch_frames:
                        frame = transitions.punch(frame, n - accent, punch_frames)
                if n in candidates:
                    score = _luma_spread(frame)
                    if score > best_thumb[0]:
                        best_thumb = (score, frame.to_image())  # the encoder takes the frame's buffers
                frame.pts = n - first
                frame.time_base = Fraction(1, fps)  # not v.time_base: the muxer changes it (mp4: 1/15360)
                frame.pict_type = av.video.frame.PictureType.NONE  # don't inherit source keyframes
                for p in v.encode(frame):
                    out.mux(p)
                # keep the audio just ahead of the video (interleaving, flat memory)
                while not audio_done and audio_time <= (n + 1) / fps:
                    af = next(audio, None)
                    if af is None:
                        audio_done = True
                        break
                    audio_time = (af.pts + af.samples) / AUDIO_RATE
                    for p in a.encode(af):
                        out.mux(p)
                if progress is not None and (n % fps == 0 or n == stop - 1):
                    progress(100.0 * (n + 1 - first) / (stop - first), "render")
            for p in v.encode(None):
                out.mux(p)
            for af in audio:
                for p in a.encode(af):
                    out.mux(p)
            for p in a.encode(None) if a is not None else ():
                out.mux(p)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        decoded = pool.decoded_frames
        pool.close()
    if thumbnail_path is not None and best_thumb[1] is not None:
        best_thumb[1].save(thumbnail_path, quality=88)
    return RenderResult(path=out_path, frames=stop - first, duration=(stop - first) / fps,
                        file_size=os.path.getsize(out_path), decoded_frames=decoded, thumbnail_score=best_thumb[0])
