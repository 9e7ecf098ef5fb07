"""fit "smart" on real footage with people in it (intel_one-by-one-person-detection.mp4: people walk
in, stand at a table, walk out; seen from behind, so no faces: the subject is found by motion).

The reference boxes are independent of the product's detector: tests/fixtures/person_boxes.json
(clean-plate foreground boxes, checked by eye; see its "how")."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest

from beatsync.analysis.synth import click_track, encode_wav
from beatsync.contracts import ClipRef, EditDecisionList, Shot, SongWindow, Transition
from beatsync.render import reframe
from beatsync.render.encode import render
from beatsync.render.probe import probe_clip
from tests.conftest import ROOT

FPS = 30
OUT_W, OUT_H = 144, 256  # 9:16


def _edl(probe, starts, seconds):
    shots, frame = [], 0
    n = int(round(seconds * FPS))
    for i, s in enumerate(starts):
        shots.append(Shot(index=i, clip=0, source_in=float(s), start_frame=frame, end_frame=frame + n,
                          transition=Transition(style="cut", duration=0), section="verse", motion=0.5))
        frame += n
    return EditDecisionList(fps=FPS, width=OUT_W, height=OUT_H, fit="smart", output_format="mp4",
                            song=SongWindow(start=0, end=frame / FPS, audio_hash="-"), total_frames=frame,
                            clips=[ClipRef(index=0, name=probe.path, duration=probe.duration)], shots=shots)


@pytest.fixture(scope="module")
def person(shared_data):
    return probe_clip(shared_data / "video" / "intel_one-by-one-person-detection.mp4")


@pytest.fixture(scope="module")
def boxes():
    doc = json.loads((ROOT / "tests" / "fixtures" / "person_boxes.json").read_text())
    return {int(k): v for k, v in doc["boxes"].items()}


def test_person_stays_in_the_9x16_window(person, boxes):
    # the whole clip as 2 s shots: every shot boundary is an output cut where the window may jump
    edl = _edl(person, np.arange(0, 137, 2.0), 2.0)
    plan = reframe.plan_crops(edl, [person])
    axis, extent = reframe.window_extent(person, OUT_W, OUT_H)
    assert axis == "x"
    src_w = person.width
    inside = centre_inside = counted = too_wide = 0
    for s in edl.shots:
        sc = plan.shots[s.index]
        for k in range(s.frames):
            i = int(np.floor((s.source_in + k / FPS) * person.fps + 1e-6))  # the source frame shown
            if i not in boxes:
                continue
            x, _, w, _ = boxes[i]
            if w > extent * src_w:
                too_wide += 1  # a person close to the camera, wider than any 9:16 window
                continue
            lo, hi = x / src_w, (x + w) / src_w
            c = sc.centres[k]
            counted += 1
            inside += c - extent / 2 <= lo and hi <= c + extent / 2
            centre_inside += 0.5 - extent / 2 <= lo and hi <= 0.5 + extent / 2
        # smooth: within the speed bound everywhere inside a shot (this clip has no cuts of its own)
        assert sc.cuts == []
        # the documented bound: 0.4 of the frame per second
        assert np.abs(np.diff(sc.centres[: s.frames])).max() <= 0.4 / FPS + 1e-9
    assert counted >= 600 and too_wide <= 0.02 * counted
    assert inside / counted >= 0.95, (inside, counted)
    assert centre_inside / counted < 0.3  # what fill (a centre crop) would have kept: the test has teeth


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    y, _ = click_track(120.0, 10.0, 44100, offset=0.5)
    p = tmp_path_factory.mktemp("song") / "clicks.wav"
    p.write_bytes(encode_wav(y, 44100))
    return str(p)


def test_rendered_frames_show_the_planned_window(person, song, tmp_path):
    """The render applies the plan: each sampled output frame is the source, scaled to cover,
    cut at the planned offset (found by matching), not at the centre."""
    edl = _edl(person, [17.0, 22.5, 43.0], 2.5)  # people walking out and in
    plan = reframe.plan_crops(edl, [person])
    out = tmp_path / "smart.mp4"
    render(edl, [person], song, str(out))
    with av.open(str(out)) as c:
        rendered = [f.to_ndarray(format="gray") for f in c.decode(c.streams.video[0])]
    assert len(rendered) == edl.total_frames
    scale = OUT_H / person.height
    cover_w = int(round(person.width * scale / 2) * 2)
    wanted = {}  # output frame -> (source frame index, planned x offset in output pixels)
    for s in edl.shots:
        for k in range(0, s.frames, 15):
            _, at = plan.position(s.index, s.source_in + k / FPS)
            i = int(np.floor((s.source_in + k / FPS) * person.fps + 1e-6))
            wanted[s.start_frame + k] = (i, at * (cover_w - OUT_W))
    sources = {}
    with av.open(person.path) as c:
        for i, f in enumerate(c.decode(c.streams.video[0])):
            if i in {v[0] for v in wanted.values()}:
                sources[i] = cv2.resize(f.to_ndarray(format="gray"), (cover_w, OUT_H), interpolation=cv2.INTER_AREA)
    off_centre = 0
    for n, (i, x_plan) in wanted.items():
        img = rendered[n].astype(np.float32)
        src = sources[i].astype(np.float32)
        errors = [np.abs(src[:, x:x + OUT_W] - img).mean() for x in range(0, cover_w - OUT_W + 1)]
        x_found = int(np.argmin(errors))
        assert abs(x_found - x_plan) <= 3, (n, x_found, x_plan)
        off_centre += abs(x_plan - (cover_w - OUT_W) / 2) > 10
    assert off_centre >= len(wanted) // 3
