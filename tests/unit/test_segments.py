"""A render split into segments and joined by stream copy, measured on its output: every frame
across every seam, the A/V offset at each seam, a transition across a requested boundary,
container timing, cancel. Small pictures keep it fast."""

from __future__ import annotations

import numpy as np
import pytest
import av

from beatsync.analysis.synth import click_track, encode_wav
from beatsync.contracts import ClipRef, EditDecisionList, Shot, SongWindow, Transition
from beatsync.render import encode as enc
from beatsync.render import segments as sg
from beatsync.render.encode import RenderCancelled, render
from beatsync.render.probe import probe_clip
from beatsync.render.synth import moving_frames, solid_frames, write_clip

SR, FPS = 44100, 30
COLOURS = [(220, 30, 30), (30, 200, 40), (30, 40, 220), (230, 220, 40)]
WINDOW = (1.0, 7.0)  # song seconds shown: clicks (120 BPM from 0.5 s) fall on frames 0, 15, 30, ...


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("seg")
    y, times = click_track(120.0, 8.0, SR, offset=0.5, accent=0.0)
    song = d / "clicks.wav"
    song.write_bytes(encode_wav(y, SR))
    clips = [write_clip(str(d / f"c{i}.mp4"), solid_frames(c, 4.0, FPS, size=(96, 64)), gop=30)
             for i, c in enumerate(COLOURS)]
    return str(song), times, [probe_clip(c) for c in clips]


def edl_of(shots, fmt="mp4", total=180, size=(96, 64)) -> EditDecisionList:
    return EditDecisionList(fps=FPS, width=size[0], height=size[1], fit="fill", output_format=fmt,
                            song=SongWindow(start=WINDOW[0], end=WINDOW[0] + total / FPS, audio_hash="x"),
                            total_frames=total, clips=[ClipRef(index=i, name=f"c{i}", duration=4.0) for i in range(4)],
                            shots=shots)


def cut_every(step: int, total: int = 180, fades: dict[int, float] | None = None) -> list[Shot]:
    fades = fades or {}
    return [Shot(index=i, clip=i % 4, source_in=round(0.1 * i, 2) % 2, start_frame=f, end_frame=min(total, f + step),
                 transition=Transition(style="fade" if i in fades else "cut", duration=fades.get(i, 0.0)),
                 section="verse", motion=0.5)
            for i, f in enumerate(range(0, total, step))]


def colour_names(path) -> list[int]:
    with av.open(str(path)) as c:
        means = [f.to_ndarray(format="rgb24").reshape(-1, 3).mean(0) for f in c.decode(c.streams.video[0])]
    return [int(np.argmin([np.abs(np.array(col) - m).sum() for col in COLOURS])) for m in means]


def planned_names(edl) -> list[int]:
    out = []
    for s in edl.shots:
        out += [s.clip] * s.frames
    return out


def render_parts(edl, probes, segs, folder):
    parts = []
    for s in segs:
        path = str(folder / f"seg-{s.index}.{edl.output_format}")
        r = sg.render_segment(edl, probes, s, path)
        assert r.frames == s.frames
        parts.append((s, path))
    return parts


def join(edl, probes, song, segs, out):
    """The segments joined as a parallel render joins them: with the song's window encoded beforehand."""
    parts = render_parts(edl, probes, segs, out.parent)
    audio = enc.encode_audio(edl, song, str(out.parent / f"audio.{enc.AUDIO_FILE_EXT[edl.output_format]}"))
    return sg.merge(edl, None, parts, str(out), audio=audio)


def video_packets(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(p.pts, p.dts, p.is_keyframe) for p in c.demux(s) if p.size], s.time_base


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_every_frame_across_every_seam_is_the_planned_one(media, tmp_path, fmt):
    song, _, probes = media
    edl = edl_of(cut_every(7), fmt)  # shots of 7 frames: seams fall wherever the balance puts them
    segs = sg.split(edl, sg.shot_costs(edl, probes), 4, probes)
    assert len(segs) == 4 and all(s.start in {sh.start_frame for sh in edl.shots} for s in segs)
    merged = join(edl, probes, song, segs, tmp_path / f"out.{fmt}")
    assert merged.frames == 180
    names = colour_names(merged.path)
    assert names == planned_names(edl)  # same count, every cut on its frame, no duplicate or missing frame
    packets, tb = video_packets(merged.path)
    pts = sorted(round(p * tb * FPS) for p, _, _ in packets)
    assert pts == list(range(180))
    dts = [d for _, d, _ in packets]
    assert all(b > a for a, b in zip(dts, dts[1:]))  # strictly increasing across seams (B-frame delay)
    keyframes = [round(p * tb * FPS) for p, _, k in packets if k]
    assert {s.start for s in segs} <= set(keyframes)  # each segment opens on a keyframe
    with av.open(merged.path) as c:  # a valid index: duration, seeking
        assert c.duration / 1e6 == pytest.approx(6.0, abs=0.05)
        s = c.streams.video[0]
        c.seek(int(4.0 / s.time_base), stream=s, backward=True)
        f = next(c.decode(s))
        assert 3.0 <= f.time <= 4.0 + 1e-6 and abs(f.time * FPS - round(f.time * FPS)) < 0.02  # webm: ms


def audio_of(path):
    """The decoded samples (channels x samples), the packets as stored and the container's duration (s)."""
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        packets, tb = [(p.pts, p.dts, p.duration, bytes(p)) for p in c.demux(a) if p.size], a.time_base
    with av.open(str(path)) as c:
        pcm = np.concatenate([f.to_ndarray() for f in c.decode(c.streams.audio[0])], axis=1)
        return pcm, packets, tb, c.duration / 1e6


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_the_merge_copying_the_audio_encoded_beforehand_equals_encoding_it_in_place(media, tmp_path, fmt):
    song, _, probes = media
    total = 173  # the window (5.767 s) ends inside an AAC and an Opus frame
    edl = edl_of(cut_every(7, total=total), fmt, total=total)
    parts = render_parts(edl, probes, sg.split(edl, sg.shot_costs(edl, probes), 3, probes), tmp_path)
    in_place = sg.merge(edl, song, parts, str(tmp_path / f"in_place.{fmt}"))
    audio = enc.encode_audio(edl, song, str(tmp_path / f"audio.{enc.AUDIO_FILE_EXT[fmt]}"))
    copied = sg.merge(edl, None, parts, str(tmp_path / f"copied.{fmt}"), audio=audio)
    assert copied.frames == in_place.frames == total
    assert video_packets(copied.path) == video_packets(in_place.path)  # the video: the same packets
    assert colour_names(copied.path) == planned_names(edl)
    pcm, packets, tb, duration = audio_of(copied.path)
    want_pcm, want_packets, want_tb, want_duration = audio_of(in_place.path)
    assert tb == want_tb and packets == want_packets  # the same packets, priming / pre-skip included
    assert pcm.shape == want_pcm.shape and np.array_equal(pcm, want_pcm)  # so the same samples
    samples = round(total / FPS * enc.AUDIO_RATE)
    # the audio ends at the window's end: the last packet's duration is the samples left, not a whole frame
    pts, _, length, _ = packets[-1]
    assert abs(float((pts + length) * tb) - total / FPS) <= float(tb)
    if fmt == "webm":  # Opus: pre-skip and the end's discard padding honoured by the decoder
        assert pcm.shape[1] == samples
    else:  # AAC decodes whole frames; the file's duration (edit list) ends at the window's end
        assert duration == pytest.approx(total / FPS, abs=0.002)
        assert samples <= pcm.shape[1] < samples + 1024


def test_the_audio_encoding_stops_when_asked_and_leaves_no_file(media, tmp_path):
    song, _, _ = media
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 1  # after the first second of audio or so

    with pytest.raises(RenderCancelled):
        enc.encode_audio(edl_of(cut_every(30)), song, str(tmp_path / "audio.m4a"), should_stop=should_stop)
    assert len(asked) == 2 and list(tmp_path.iterdir()) == []


def _onsets(samples: np.ndarray, sr: int) -> np.ndarray:
    env = np.abs(samples)
    above = np.flatnonzero(env > 0.15 * env.max())
    onsets = [above[0]] if len(above) else []
    for i in above[1:]:
        if i - onsets[-1] > 0.1 * sr:
            onsets.append(i)
    return np.array(onsets) / sr


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_audio_stays_on_the_cuts_at_every_seam(media, tmp_path, fmt):
    song, times, probes = media
    edl = edl_of(cut_every(15), fmt)  # a cut on every click
    segs = sg.segments_at(edl, [45, 90, 135])
    assert [s.start for s in segs] == [0, 45, 90, 135]
    merged = join(edl, probes, song, segs, tmp_path / f"av.{fmt}")
    names = colour_names(merged.path)
    cut_times = np.array([n for n in range(1, len(names)) if names[n] != names[n - 1]]) / FPS
    with av.open(merged.path) as c:
        a = c.streams.audio[0]
        pcm = np.concatenate([f.to_ndarray()[0] for f in c.decode(a)])
        rate = a.rate
    got = _onsets(pcm, rate)
    want = times[(times >= WINDOW[0]) & (times < WINDOW[0] + 6.0)] - WINDOW[0]
    assert len(got) == len(want) == 12
    assert np.max(np.abs(got - want)) <= 0.005  # start, middle, end: every click
    for seam in (45, 90, 135):  # the picture cuts with the click at each seam
        click = got[np.argmin(np.abs(got - seam / FPS))]
        assert seam / FPS in cut_times and abs(click - seam / FPS) <= 0.005


def test_a_transition_across_a_requested_boundary_is_rendered_whole_by_one_side(media, tmp_path):
    song, _, probes = media
    # shot 2 opens with a 0.3 s fade (frames 60-68): a boundary requested at frame 64 falls inside it
    edl = edl_of(cut_every(30, fades={2: 0.3, 4: 0.2}))
    segs = sg.segments_at(edl, [64, 121])
    assert [s.start for s in segs] == [0, 60, 120]  # both moved to the start of the shot the fade opens
    merged = join(edl, probes, song, segs, tmp_path / "t.mp4")
    render(edl, probes, song, str(tmp_path / "single.mp4"))

    def frames(p):
        with av.open(str(p)) as c:
            return [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(c.streams.video[0])]

    one, par = frames(tmp_path / "single.mp4"), frames(merged.path)
    assert len(one) == len(par) == 180
    diffs = [np.abs(x.mean((0, 1)) - y.mean((0, 1))).max() for x, y in zip(one, par)]
    assert max(diffs) < 3, int(np.argmax(diffs))
    red, green = np.array(COLOURS[2]), np.array(COLOURS[1])  # the fade from clip 1 to clip 2 at frame 60
    mid = par[64].mean((0, 1))
    assert np.abs(mid - red).sum() > 40 and np.abs(mid - green).sum() > 40  # a blend, not a cut


def test_split_balances_estimated_work_including_decode_from_keyframes(tmp_path):
    # clip 1 has keyframes 4 s apart: shots that start 3.5 s into it decode ~105 frames first
    far = write_clip(str(tmp_path / "far.mp4"), moving_frames(8.0, FPS, size=(96, 64)), gop=120)
    near = write_clip(str(tmp_path / "near.mp4"), moving_frames(8.0, FPS, size=(96, 64)), gop=10)
    probes = [probe_clip(near), probe_clip(far)]
    shots = [Shot(index=i, clip=0 if i < 6 else 1, source_in=0.0 if i < 6 else 3.5, start_frame=15 * i,
                  end_frame=15 * (i + 1), transition=Transition(style="cut", duration=0), section="verse", motion=0.5)
             for i in range(12)]
    edl = edl_of(shots)
    costs = sg.shot_costs(edl, probes)
    assert costs[6] > costs[0] * 2
    segs = sg.split(edl, costs, 2, probes)
    assert len(segs) == 2 and segs[0].frames > segs[1].frames  # the costly second half gets fewer frames
    sums = [sum(costs[i] for i, s in enumerate(shots) if seg.start <= s.start_frame < seg.end) for seg in segs]
    assert max(sums) / min(sums) < 1.3
    assert sg.task_count(240, 30, 8) == 8 and sg.task_count(61, 30, 8) == 3 and sg.task_count(5, 30, 8) == 1


def test_the_task_count_is_the_fewest_that_meet_the_target_within_the_floor_and_the_cap():
    """Pure: the fewest tasks predicted to render within the target, each task's overhead counted; never
    a segment shorter than the floor (BEATSYNC_RENDER_TASK_SECONDS), never more than the cap."""
    hd, p720 = 1920 * 1080 * 30, 1280 * 720 * 30
    # 4 minutes of 1080p30 against 10 s: 30 s segments (9.5 s each), as the prediction's 8 tasks
    assert sg.task_count(240, 30, 8, 10.0, hd) == 8
    assert sg.task_render_seconds(240, 8, hd) <= 10.0 < sg.task_render_seconds(240, 7, hd)
    # a shorter or smaller render needs fewer tasks for the same deadline: each one more costs its overhead
    assert sg.task_count(31, 30, 8, 10.0, hd) == 1  # the floor alone: 2
    assert sg.task_count(240, 30, 8, 10.0, p720) == 6
    assert sg.task_count(240, 30, 8, 20.0, hd) == 4
    # the floor: a target no count can meet gets one task per floor's seconds, at most the cap
    assert sg.task_count(60, 30, 8, 0.5, hd) == 2
    assert sg.task_count(240, 15, 8, 1.0, hd) == 8
    # a lower floor lets the target choose: 2 minutes at 15 s segments would be 8 tasks, 10 s needs 4
    assert sg.task_count(120, 15, 8, 10.0, hd) == 4
    # the overhead is counted: more tasks never bring a task's time below overhead / rate
    assert sg.task_render_seconds(240, 1000, hd) > sg.TASK_OVERHEAD_CPU / sg.TASK_CPU_RATE
    assert sg.task_count(3600, 30, 100, sg.TASK_OVERHEAD_CPU / sg.TASK_CPU_RATE, hd) == 100
    # no target: one per floor's seconds (the count before the target), at least one
    assert sg.task_count(240, 30, 8) == 8 and sg.task_count(0.1, 30, 8, 10.0, hd) == 1


def test_parallel_processes_render_the_same_video_and_cancel_leaves_nothing(media, tmp_path):
    song, _, probes = media
    edl = edl_of(cut_every(9))
    out = tmp_path / "p.mp4"
    r = sg.render_parallel(edl, probes, song, str(out), workers=2, tasks=3, thumbnail_path=str(tmp_path / "t.jpg"))
    assert len(r.segments) == 3 and r.frames == 180
    assert colour_names(out) == planned_names(edl)
    assert (tmp_path / "t.jpg").stat().st_size > 300
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 1

    long_edl = edl_of(cut_every(9, total=900), total=900)
    with pytest.raises(RenderCancelled):
        sg.render_parallel(long_edl, probes, song, str(tmp_path / "c.mp4"), workers=2, tasks=2, should_stop=should_stop)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("p.")) == ["t.jpg"]
