"""fit "smart": the crop follows the subject on a smooth path, measured on the rendered output."""

from __future__ import annotations

import av
import numpy as np
import pytest

from beatsync.analysis.synth import click_track, encode_wav
from beatsync.contracts import ClipRef, EditDecisionList, Shot, SongWindow, Transition
from beatsync.render import reframe
from beatsync.render.encode import render
from beatsync.render.probe import probe_clip
from beatsync.render.synth import write_clip

FPS = 30
SRC_W, SRC_H = 480, 270
RADIUS = 16


def disc_track(seconds: float = 7.0):
    """Where a bright disc is (centre x, y in source px) at each frame, and the source's own cut.

    0-2.5 s: moves left to right across the frame; 2.5-4 s: still at the right; 4 s: a hard cut
    (another background, the disc jumps to the left); 4-7 s: it drifts right slowly."""
    n = int(seconds * FPS)
    xs = []
    for i in range(n):
        t = i / FPS
        if t < 2.5:
            x = 40 + (440 - 40) * t / 2.5
        elif t < 4.0:
            x = 440
        else:
            x = 50 + 40 * (t - 4.0)
        xs.append(x)
    return np.array(xs), 4.0


def disc_frames(xs, cut_t):
    rng = np.random.default_rng(3)
    backgrounds = [np.clip(rng.normal(m, 6, (SRC_H, SRC_W, 3)), 0, 255).astype(np.uint8) for m in (70, 120)]
    yy, xx = np.mgrid[:SRC_H, :SRC_W]
    out = []
    for i, x in enumerate(xs):
        img = backgrounds[int(i / FPS >= cut_t)].copy()
        img[(xx - x) ** 2 + (yy - SRC_H / 2) ** 2 <= RADIUS**2] = (255, 255, 255)
        out.append(img)
    return out


def edl_for(probes, width, height, shots, fit="smart"):
    """shots: [(clip, source_in, frames)]"""
    out, start = [], 0
    for i, (clip, source_in, frames) in enumerate(shots):
        out.append(Shot(index=i, clip=clip, source_in=source_in, start_frame=start, end_frame=start + frames,
                        transition=Transition(style="cut", duration=0), section="verse", motion=0.5))
        start += frames
    return EditDecisionList(fps=FPS, width=width, height=height, fit=fit, output_format="mp4",
                            song=SongWindow(start=0, end=start / FPS, audio_hash="-"), total_frames=start,
                            clips=[ClipRef(index=i, name=p.path, duration=p.duration) for i, p in enumerate(probes)],
                            shots=out)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    y, _ = click_track(120.0, 12.0, 44100, offset=0.5)
    p = tmp_path_factory.mktemp("song") / "clicks.wav"
    p.write_bytes(encode_wav(y, 44100))
    return str(p)


@pytest.fixture(scope="module")
def disc_clip(tmp_path_factory):
    xs, cut = disc_track()
    path = write_clip(str(tmp_path_factory.mktemp("disc") / "disc.mp4"), disc_frames(xs, cut), FPS)
    return probe_clip(path), xs, cut


def _bright_columns(frame: np.ndarray):
    y = frame[: frame.shape[0] * 2 // 3]  # yuv420p packed: the luma plane
    cols = np.flatnonzero((y > 200).sum(axis=0) >= 2)
    return cols


def test_smart_keeps_a_moving_disc_in_frame(disc_clip, song, tmp_path):
    probe, xs, cut = disc_clip
    # two output shots: the second starts inside the first's range (a jump at an output cut),
    # and the first runs across the source's own cut at 4 s
    shots = [(0, 0.0, 150), (0, 1.0, 60)]
    width, height = 144, 256  # 9:16
    edl = edl_for([probe], width, height, shots)
    plan = reframe.plan_crops(edl, [probe])
    out = tmp_path / "smart.mp4"
    render(edl, [probe], song, str(out))
    with av.open(str(out)) as c:
        frames = [f.to_ndarray() for f in c.decode(c.streams.video[0])]
    assert len(frames) == edl.total_frames
    # the whole disc in the rendered frame: bright columns, not touching a side, as wide as the disc
    scale = height / SRC_H
    inside, disc_width = 0, 2 * RADIUS * scale
    for f in frames:
        cols = _bright_columns(f)
        if len(cols) and cols[0] > 0 and cols[-1] < width - 1 and cols[-1] - cols[0] + 1 >= 0.85 * disc_width:
            inside += 1
    assert inside / len(frames) >= 0.95, inside / len(frames)

    # the same on the plan: the disc's box inside the window in source coordinates
    extent = reframe.window_extent(probe, width, height)[1]
    ok, n = 0, 0
    for s in edl.shots:
        sc = plan.shots[s.index]
        for k in range(s.frames):
            i = int(round((s.source_in + k / FPS) * FPS))
            c = sc.centres[k]
            lo, hi = (xs[i] - RADIUS) / SRC_W, (xs[i] + RADIUS) / SRC_W
            ok += c - extent / 2 <= lo and hi <= c + extent / 2
            n += 1
    assert ok / n >= 0.95, ok / n

    # smooth: every step within the speed bound except at the source's cut (frame 120 of shot 0)
    first = plan.shots[0]
    assert first.cuts == [int(round(cut * FPS))]
    steps = np.abs(np.diff(first.centres[: edl.shots[0].frames]))
    bound = 0.4 / FPS + 1e-9  # the documented bound: 0.4 of the frame per second
    jump_at = [k + 1 for k in np.flatnonzero(steps > bound)]
    assert set(jump_at) <= set(first.cuts), jump_at
    assert steps[int(cut * FPS) - 1] > 0.2  # the window did jump there (the disc went from right to left)
    # hold: the disc is still from 2.5 s to 4 s: once the window has caught up it does not move
    still = first.centres[int(3.0 * FPS): int(4.0 * FPS) - 1]
    assert np.ptp(still) < 1e-6


def test_centre_when_nothing_moves(tmp_path, song):
    rng = np.random.default_rng(1)
    img = np.clip(rng.normal(100, 5, (SRC_H, SRC_W, 3)), 0, 255).astype(np.uint8)
    img[100:170, 20:60] = 250  # a still bright block at the left: not a subject (no face, no motion)
    path = write_clip(str(tmp_path / "still.mp4"), [img] * 60, FPS)
    probe = probe_clip(path)
    edl = edl_for([probe], 144, 256, [(0, 0.0, 45)])
    plan = reframe.plan_crops(edl, [probe])
    assert np.allclose(plan.shots[0].centres, 0.5)


@pytest.mark.parametrize("size,axis", [((256, 256), "x"), ((256, 144), "y")])
def test_window_geometry(tmp_path, size, axis):
    """1:1 from 16:9 slides along x; 16:9 from a portrait clip slides along y; same aspect: no window."""
    w, h = (SRC_W, SRC_H) if axis == "x" else (SRC_H, SRC_W)
    path = write_clip(str(tmp_path / "g.mp4"), [np.zeros((h, w, 3), np.uint8)] * 3, FPS)
    probe = probe_clip(path)
    got_axis, extent = reframe.window_extent(probe, *size)
    assert got_axis == axis and extent == pytest.approx((size[0] / size[1]) / (w / h) if axis == "x"
                                                        else (w / h) / (size[0] / size[1]))
    assert reframe.window_extent(probe, w * 2, h * 2)[1] == 1.0


def test_path_is_smooth_through_noisy_tight_corridors():
    """A subject wider than the window (it must centre on it) whose detected centre jitters by
    +-0.01 around 0.3, then jumps to 0.7: the path stays within the speed bound, does not
    shake with the noise, and holds where the corridor allows."""
    rng = np.random.default_rng(0)
    n = 240
    target = np.where(np.arange(n) < 120, 0.3, 0.7) + rng.uniform(-0.01, 0.01, n)
    boxes = np.stack([target - 0.2, target + 0.2], axis=1)  # 0.4 wide, the window 0.32
    lo, hi, seen = reframe._corridors(boxes, 0.32)
    path = reframe.smooth_path(lo, hi, seen, FPS)
    steps = np.diff(path)
    assert np.abs(steps).max() <= 0.4 / FPS + 1e-9
    # no shaking: the direction of movement changes rarely (noise-following would flip ~n/2 times)
    moving = steps[np.abs(steps) > 3e-4]  # 3e-4 of the source's width: 1 px of a 1080x1920 output from 16:9
    assert np.count_nonzero(np.diff(np.sign(moving))) <= 6
    # a free corridor after the subject: the window holds, then drifts back to the centre slowly
    lo2 = np.concatenate([np.full(30, 0.8), np.full(90, 0.16)])
    hi2 = np.concatenate([np.full(30, 0.8), np.full(90, 0.84)])
    seen = np.arange(120) < 30
    p2 = reframe.smooth_path(lo2, hi2, seen, FPS)
    assert np.allclose(p2[:24], 0.8) and p2[-1] < p2[30] - 0.1 and np.abs(np.diff(p2)).max() <= 0.4 / FPS + 1e-9


def test_a_face_comes_before_motion(tmp_path):
    """A still face at the left (a real photograph: Grace Hopper, public domain, shipped in
    matplotlib's sample data) and a big block moving at the right: the window holds the face."""
    import os

    import cv2
    import matplotlib

    photo = cv2.imread(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"))
    portrait = cv2.cvtColor(cv2.resize(photo, (150, 176)), cv2.COLOR_BGR2RGB)
    x0, y0 = 20, 40
    frames = []
    for i in range(90):
        img = np.full((SRC_H, SRC_W, 3), 90, np.uint8)
        img[y0:y0 + portrait.shape[0], x0:x0 + portrait.shape[1]] = portrait
        bx = 300 + int(120 * abs(np.sin(i / 9)))  # bouncing at the right
        img[40:200, bx:bx + 60] = (240, 240, 60)
        frames.append(img)
    probe = probe_clip(write_clip(str(tmp_path / "face.mp4"), frames, FPS))
    edl = edl_for([probe], 144, 256, [(0, 0.0, 75)])
    an = reframe.analyse_clip(probe, [(0.0, 2.5)], "x")
    assert an.kinds.count("face") >= 0.8 * len(an.kinds)
    plan = reframe.plan_crops(edl, [probe])
    extent = reframe.window_extent(probe, 144, 256)[1]
    c = plan.shots[0].centres[:75]
    # the face spans about 0.25..0.8 of the photograph's width (checked by eye)
    lo, hi = (x0 + 0.25 * portrait.shape[1]) / SRC_W, (x0 + 0.8 * portrait.shape[1]) / SRC_W
    assert np.mean((c - extent / 2 <= lo) & (hi <= c + extent / 2)) >= 0.95


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotated_clip_window_slides_along_the_displayed_axis(tmp_path, song, rotation):
    """A phone clip stored landscape with a display rotation shows portrait: a 1:1 output slides
    its window vertically, and the disc (moving along the stored x) stays whole in the output."""
    xs, cut = disc_track(3.9)  # before the source's cut: the disc crosses, then stays
    probe = probe_clip(write_clip(str(tmp_path / "rot.mp4"), disc_frames(xs, cut), FPS, rotation=rotation))
    assert probe.display_size == (SRC_H, SRC_W)
    assert reframe.window_extent(probe, 128, 128)[0] == "y"
    edl = edl_for([probe], 128, 128, [(0, 0.0, 110)])
    out = tmp_path / "o.mp4"
    render(edl, [probe], song, str(out))
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="gray") for f in c.decode(c.streams.video[0])]
    disc = 2 * RADIUS * 128 / SRC_H
    whole = 0
    for f in frames:
        rows = np.flatnonzero((f > 200).sum(axis=1) >= 2)
        whole += bool(len(rows)) and rows[0] > 0 and rows[-1] < 127 and rows[-1] - rows[0] + 1 >= 0.85 * disc
    assert whole / len(frames) >= 0.95, whole / len(frames)


def test_cancel_stops_the_analysis(disc_clip):
    """The analysis pass asks should_stop as it decodes (a cancelled job does not plan on)."""
    from beatsync.render.encode import RenderCancelled

    probe, _, _ = disc_clip
    asked = []
    with pytest.raises(RenderCancelled):
        reframe.analyse_clip(probe, [(0.0, 7.0)], "x", should_stop=lambda: asked.append(1) or len(asked) >= 2)
    assert len(asked) == 2  # asked every 30 decoded frames: stopped at the 60th of 210
