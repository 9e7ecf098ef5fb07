"""The renderer, measured on its output: cut frames, audio alignment, formats, odd inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest
import av

from beatsync.analysis.synth import click_track, encode_wav
from beatsync.contracts import ClipRef, EditDecisionList, Shot, SongWindow, Transition
from beatsync.editing import resolve_config
from beatsync.errors import MediaError
from beatsync.render.encode import render
from beatsync.render.pipeline import make_video
from beatsync.render.probe import probe_clip
from beatsync.render.synth import moving_frames, solid_frames, write_clip

SR = 44100
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 40)}


def decode_frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def nearest_colour(img) -> str:
    mean = img.reshape(-1, 3).mean(axis=0)
    return min(COLOURS, key=lambda k: np.abs(np.array(COLOURS[k]) - mean).sum())


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    y, times = click_track(120.0, 12.0, SR, offset=0.5)
    p = tmp_path_factory.mktemp("song") / "clicks.wav"
    p.write_bytes(encode_wav(y, SR))
    return p, times


@pytest.fixture(scope="module")
def colour_clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return [write_clip(str(d / f"{name}.mp4"), solid_frames(rgb, 8.0, 30)) for name, rgb in COLOURS.items()]


def test_every_cut_lands_on_its_planned_frame(song, colour_clips, tmp_path):
    path, _ = song
    cfg = resolve_config(None, {"sync_mode": "every_beat", "min_shot_duration": 0.4, "output_resolution": "320x180",
                                "section_aware": False})
    result = make_video(str(path), colour_clips, str(tmp_path / "out.mp4"), cfg, method="librosa")
    edl = result.edl
    frames = decode_frames(result.video)
    assert len(frames) == edl.total_frames == 360
    names = [nearest_colour(f) for f in frames]
    clip_colour = {i: list(COLOURS)[i] for i in range(4)}
    expected = []
    for s in edl.shots:
        expected += [clip_colour[s.clip]] * s.frames
    assert names == expected  # every frame shows its planned clip: cuts are frame-exact
    changes = [n for n in range(1, len(names)) if names[n] != names[n - 1]]
    planned = [s.start_frame for p, s in zip(edl.shots, edl.shots[1:]) if s.clip != p.clip]
    assert changes == planned and len(changes) >= 15
    # the cuts are on the beats: planned frames are round(beat time * fps)
    beat_frames = {b.frame for b in result.beat_map.beats}
    assert set(edl.cut_frames) <= beat_frames


def _onsets(samples: np.ndarray, sr: int) -> np.ndarray:
    env = np.abs(samples)
    thr = 0.15 * env.max()
    above = np.flatnonzero(env > thr)
    onsets = [above[0]] if len(above) else []
    for i in above[1:]:
        if i - onsets[-1] > 0.1 * sr:
            onsets.append(i)
    return np.array(onsets) / sr


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_audio_is_aligned_with_video(song, colour_clips, tmp_path, fmt):
    path, times = song
    cfg = resolve_config(None, {"output_resolution": "320x180", "output_format": fmt, "preview_only": True,
                                "preview_duration": 6, "sync_mode": "downbeats"})
    result = make_video(str(path), colour_clips[:2], str(tmp_path / f"out.{fmt}"), cfg, method="librosa")
    start = result.edl.song.start
    with av.open(result.video) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        a = c.streams.audio[0]
        assert a.codec_context.name == ("aac" if fmt == "mp4" else "opus")
        assert c.streams.video[0].codec_context.name == ("h264" if fmt == "mp4" else "vp9")
        pcm = np.concatenate([f.to_ndarray()[0] for f in c.decode(a)])
        rate = a.rate
    got = _onsets(pcm, rate)
    want = times[(times >= start) & (times < start + 6)] - start
    assert len(got) == len(want) >= 10
    assert np.max(np.abs(got - want)) <= 0.005, (got - want)


def test_output_probes_as_planned(song, colour_clips, tmp_path):
    path, _ = song
    cfg = resolve_config("fast_cuts", {"output_resolution": "320x180", "output_fps": 25})
    result = make_video(str(path), colour_clips, str(tmp_path / "v.mp4"), cfg, method="librosa")
    p = probe_clip(result.video)
    assert (p.width, p.height) == (320, 180)
    assert p.fps == pytest.approx(25)
    assert p.duration == pytest.approx(result.edl.total_frames / 25, abs=0.05)
    assert p.codec == "h264" and p.has_audio
    assert result.thumbnail == str(tmp_path / "v.mp4.thumbnail.jpg") and os.path.getsize(result.thumbnail) > 500
    assert (tmp_path / "v.mp4.edl.json").exists() and (tmp_path / "v.mp4.beat_map.json").exists()
    from PIL import Image

    thumb = np.asarray(Image.open(result.thumbnail))
    assert thumb.shape[:2] == (180, 320) and thumb.mean() > 20  # not a black frame


def one_clip_edl(clip_duration: float, seconds: float, fps: int = 30, size=(320, 180), fit="fill", n_clips=1,
                 shots=None) -> EditDecisionList:
    total = int(seconds * fps)
    shots = shots or [Shot(index=0, clip=0, source_in=0.0, start_frame=0, end_frame=total,
                           transition=Transition(style="cut", duration=0), section="verse", motion=0.5)]
    return EditDecisionList(fps=fps, width=size[0], height=size[1], fit=fit, output_format="mp4",
                            song=SongWindow(start=0, end=seconds, audio_hash="x"), total_frames=total,
                            clips=[ClipRef(index=i, name=f"c{i}", duration=clip_duration) for i in range(n_clips)],
                            shots=shots)


def half_and_half(seconds, fps, size=(160, 90), switch=1.0, timestamps=None):
    out = []
    ts = timestamps if timestamps is not None else [i / fps for i in range(int(seconds * fps))]
    for t in ts:
        rgb = COLOURS["red"] if t < switch else COLOURS["green"]
        img = np.empty((size[1], size[0], 3), np.uint8)
        img[:] = rgb
        out.append(img)
    return out


@pytest.mark.parametrize("fps", [60, 12.5, 29.97])
def test_frame_rate_conversion_by_timestamps(song, tmp_path, fps):
    clip = write_clip(str(tmp_path / "c.mp4"), half_and_half(2.0, fps), fps=fps)
    edl = one_clip_edl(2.0, 2.0)
    render(edl, [probe_clip(clip)], str(song[0]), str(tmp_path / "o.mp4"))
    names = [nearest_colour(f) for f in decode_frames(tmp_path / "o.mp4")]
    first_green = names.index("green")
    assert names[:first_green] == ["red"] * first_green and set(names[first_green:]) == {"green"}
    # output frame n shows the latest source frame at or before n / 30 s
    switch = np.ceil(1.0 * fps - 1e-9) / fps  # time of the first green source frame
    assert first_green == int(np.ceil(switch * 30 - 1e-6))


def test_variable_frame_rate_clip(song, tmp_path):
    ts, t = [], 0.0
    while t < 2.0:
        ts.append(round(t, 3))
        t += 0.02 if len(ts) % 2 else 0.05  # 20 / 50 ms alternating: ~28.6 fps average
    clip = write_clip(str(tmp_path / "vfr.mkv"), half_and_half(2.0, 30, timestamps=ts), fps=30, timestamps=ts)
    probe = probe_clip(clip)
    edl = one_clip_edl(probe.duration, 1.9)
    render(edl, [probe], str(song[0]), str(tmp_path / "o.mp4"))
    names = [nearest_colour(f) for f in decode_frames(tmp_path / "o.mp4")]
    first_green_src = min(x for x in ts if x >= 1.0)
    assert names.index("green") == int(np.ceil(first_green_src * 30 - 1e-6))


def test_rotation_from_display_matrix(song, tmp_path):
    img = np.zeros((90, 160, 3), np.uint8)
    img[:, :80] = COLOURS["red"]
    img[:, 80:] = COLOURS["blue"]
    clip = write_clip(str(tmp_path / "phone.mp4"), [img] * 30, fps=30, rotation=90)
    probe = probe_clip(clip)
    assert probe.rotation == 90 and probe.display_size == (90, 160)
    render(one_clip_edl(1.0, 1.0, size=(180, 320)), [probe], str(song[0]), str(tmp_path / "o.mp4"))
    frame = decode_frames(tmp_path / "o.mp4")[5]
    # 90 degrees counter-clockwise: the right (blue) half is on top, the red half below
    assert nearest_colour(frame[:140]) == "blue" and nearest_colour(frame[180:]) == "red"


def test_portrait_letterbox_and_full_range(song, tmp_path):
    white = np.full((160, 90, 3), 255, np.uint8)
    clip = write_clip(str(tmp_path / "full.mp4"), [white] * 30, fps=30, pix_fmt="yuvj420p")
    probe = probe_clip(clip)
    assert probe.full_range and (probe.width, probe.height) == (90, 160)
    render(one_clip_edl(1.0, 1.0, fit="letterbox"), [probe], str(song[0]), str(tmp_path / "o.mp4"))
    with av.open(str(tmp_path / "o.mp4")) as c:
        f = next(c.decode(c.streams.video[0]))
        y = f.to_ndarray()[: f.height]
    # pillarboxed: black sides, the picture in the middle, full-range white mapped to limited 235
    assert y[:, :20].mean() < 20 and y[:, -20:].mean() < 20
    assert 228 <= np.median(y[:, 150:170]) <= 240


def blocks(img: np.ndarray, k: int = 8) -> np.ndarray:
    """Mean colour of k x k blocks: compares pictures, not codec noise."""
    h, w = img.shape[0] // k * k, img.shape[1] // k * k
    return img[:h, :w].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))


def test_transitions_are_distinct(song, tmp_path):
    a = write_clip(str(tmp_path / "a.mp4"), solid_frames(COLOURS["red"], 2.0, 30), fps=30)
    b = write_clip(str(tmp_path / "b.mp4"), moving_frames(2.0, 30, speed=0), fps=30)
    probes = [probe_clip(a), probe_clip(b)]
    mids = {}
    for style in ("cut", "fade", "zoom", "flash", "glitch", "slide"):
        dur = 0.0 if style == "cut" else 0.3
        shots = [Shot(index=0, clip=0, source_in=0, start_frame=0, end_frame=15, transition=Transition(style="cut", duration=0),
                      section="verse", motion=0.5),
                 Shot(index=1, clip=1, source_in=0, start_frame=15, end_frame=30,
                      transition=Transition(style=style, duration=dur), section="verse", motion=0.5)]
        edl = one_clip_edl(2.0, 1.0, n_clips=2, shots=shots)
        render(edl, probes, str(song[0]), str(tmp_path / f"{style}.mp4"))
        frames = decode_frames(tmp_path / f"{style}.mp4")
        mids[style] = blocks(frames[16])
        assert nearest_colour(frames[14]) == "red"
        # after the transition the incoming shot is shown untouched
        if style != "cut":
            assert np.abs(blocks(frames[29]) - blocks(decode_frames(tmp_path / "cut.mp4")[29])).mean() < 4
    cut = mids["cut"]
    for style, img in mids.items():
        if style != "cut":
            assert np.abs(img - cut).mean() > 8, f"{style} looks like a cut"
    assert mids["flash"].mean() > cut.mean() + 40  # white flash
    red = np.array(COLOURS["red"])
    assert np.abs(mids["fade"].reshape(-1, 3).mean(0) - red).sum() < np.abs(cut.reshape(-1, 3).mean(0) - red).sum()
    left, right = mids["slide"][:, :12].astype(np.uint8), mids["slide"][:, -4:].astype(np.uint8)
    assert nearest_colour(left) == "red" and nearest_colour(right) != "red"  # pushed in from the right
    styles = list(mids)
    for i, s1 in enumerate(styles):
        for s2 in styles[i + 1 :]:
            assert np.abs(mids[s1] - mids[s2]).mean() > 3, (s1, s2)


def test_bad_clips_are_named_errors(song, tmp_path):
    from beatsync.analysis.synth import encode_audio

    mp3 = tmp_path / "song_as_clip.mp3"
    mp3.write_bytes(encode_audio(click_track(120, 2, SR)[0], SR, "mp3", "libmp3lame"))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    good = write_clip(str(tmp_path / "good.mp4"), solid_frames(COLOURS["red"], 2.0, 30))
    data = open(good, "rb").read()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.mkv"
    mkv = write_clip(str(tmp_path / "src.mkv"), moving_frames(1.0, 30, speed=3))
    raw = bytearray(open(mkv, "rb").read())
    rng = np.random.default_rng(0)
    raw[400:] = rng.integers(0, 256, len(raw) - 400, dtype=np.uint8).tobytes()
    garbage.write_bytes(bytes(raw))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    cases = {mp3: "no_video_stream", empty: "unsupported_media", truncated: ("unsupported_media", "corrupt_media"),
             garbage: ("corrupt_media", "no_video_stream", "unsupported_media"), text: "unsupported_media"}
    for clip, codes in cases.items():
        with pytest.raises(MediaError) as e:
            make_video(str(song[0]), [good, str(clip)], str(tmp_path / "o.mp4"), resolve_config(), method="librosa")
        assert e.value.code in ((codes,) if isinstance(codes, str) else codes), (clip, e.value)
        assert clip.name in e.value.message
    assert not (tmp_path / "o.mp4").exists()


def test_reader_pool_caps_open_decoders(colour_clips):
    from beatsync.render.frames import ReaderPool

    probes = [probe_clip(c) for c in colour_clips]
    pool = ReaderPool(probes, 320, 180, "fill", max_open=2)
    seen = set()
    try:
        for owner in range(12):
            clip = owner % 4
            frame = pool.frame(clip, 0.5 + owner * 0.1, owner=owner)
            assert nearest_colour(frame.to_ndarray(format="rgb24")) == list(COLOURS)[clip]
            assert len(pool.readers) <= 2
            seen.update(pool.readers)
        # a closed decoder lets go of its pictures at once (not when the garbage collector finds it)
        closed = seen - set(pool.readers)
        assert len(closed) >= 8
        assert all(r._frames is None and r._current is None and r._next is None and r._converted is None
                   for r in closed)
    finally:
        pool.close()


def test_the_encoder_runs_with_the_capped_thread_count(colour_clips, tmp_path):
    from beatsync.render.encode import ENCODER_MAX_THREADS, encoder_threads

    probes = [probe_clip(c) for c in colour_clips[:1]]
    edl = EditDecisionList(fps=30, width=320, height=192, fit="fill", output_format="mp4",
                           song=SongWindow(start=0.0, end=1.0, audio_hash="-"), total_frames=30,
                           clips=[ClipRef(index=0, name="red", duration=probes[0].duration)],
                           shots=[Shot(index=0, clip=0, source_in=0.0, start_frame=0, end_frame=30,
                                       transition=Transition(style="cut", duration=0), section="verse", motion=0.5)])

    def x264_threads(path) -> int:  # x264 writes its settings into the stream (a user-data SEI)
        data = path.read_bytes()
        settings = data[data.index(b"x264 - core"):].split(b"\x00")[0].decode("latin-1")
        return int(settings.split(" threads=")[1].split()[0])

    render(edl, probes, "", str(tmp_path / "auto.mp4"), with_audio=False)
    assert x264_threads(tmp_path / "auto.mp4") == encoder_threads() <= ENCODER_MAX_THREADS
    render(edl, probes, "", str(tmp_path / "one.mp4"), with_audio=False, threads=1)
    assert x264_threads(tmp_path / "one.mp4") == 1


def test_cancel_stops_the_render_and_leaves_no_output(song, colour_clips, tmp_path):
    from beatsync.render.encode import RenderCancelled

    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    cfg = resolve_config(None, {"output_resolution": "320x180"})
    with pytest.raises(RenderCancelled) as e:
        make_video(str(song[0]), colour_clips, str(tmp_path / "o.mp4"), cfg, method="librosa", should_stop=should_stop)
    assert e.value.code == "cancelled"
    assert not (tmp_path / "o.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".render-")]
