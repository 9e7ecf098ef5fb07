"""Checks that a timeline file, read back by its OpenTimelineIO adapter, is the edit it was written from
(shared by the unit, integration and end-to-end tests of issue 23)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import opentimelineio as otio

from beatsync.contracts import BeatMap, EditDecisionList
from beatsync.render.timelines import EXPRESSES, format_of, read_timeline


def expected_markers(edl: EditDecisionList, bm: BeatMap) -> list[tuple[int, str]]:
    """(record frame, name) of each beat in the window and each section start, sorted."""
    fps, start = edl.fps, edl.song.start
    out = []
    for b in bm.beats:
        f = int(round((b.time - start) * fps))
        if 0 <= f < edl.total_frames:
            out.append((f, "downbeat" if b.is_downbeat else "beat"))
    for s in bm.sections:
        a, e = max(0, int(round((s.start_time - start) * fps))), min(edl.total_frames, int(round((s.end_time - start) * fps)))
        if e > a:
            out.append((a, s.name))
    return sorted(out)


def source_in(edl: EditDecisionList, shot, rate: float | None) -> int:
    """The sequence frame of the first source frame the render shows: the clip's frame ``i`` is at ``i / rate``
    and the reader shows the latest at or before ``source_in`` (0.1 ms slack); its time on the sequence's grid."""
    r = rate or edl.fps
    i = 0
    while (i + 1) / r <= shot.source_in + 1e-4:
        i += 1
    return round(i / r * edl.fps)


def check_round_trip(path: str, edl: EditDecisionList, bm: BeatMap, clip_urls: list[str], song_url: str,
                     clip_names: list[str] | None = None, clip_rates: list[float] | None = None) -> otio.schema.Timeline:
    """Read ``path`` back and compare it with the EDL: every clip (its media and name), its source in and
    out frames (``clip_rates``: the clips' own, else the sequence's), its record frames, the total duration;
    the song's offset; transitions; markers."""
    fmt = format_of(path)
    tl = read_timeline(path, rate=edl.fps)
    fps = edl.fps
    (video,) = tl.video_tracks()
    clips = list(video.find_clips())
    assert len(clips) == len(edl.shots), (fmt, len(clips), len(edl.shots))
    for shot, clip in zip(edl.shots, clips):
        src = clip.source_range
        rec = clip.trimmed_range_in_parent()
        # a clip read at its file's own rate (29.97) comes back within float precision of whole frames
        got = tuple(round(t.rescaled_to(fps).value, 6) for t in (
            src.start_time, src.end_time_exclusive(), rec.start_time, rec.end_time_exclusive()))
        src_in = source_in(edl, shot, clip_rates[shot.clip] if clip_rates else None)
        assert got == (src_in, src_in + shot.frames, shot.start_frame, shot.end_frame), (fmt, shot.index, got, src_in)
        assert clip.media_reference.target_url == clip_urls[shot.clip], (fmt, shot.index)
        if clip_names:
            assert clip.name == clip_names[shot.clip], (fmt, clip.name)
    assert video.duration().rescaled_to(fps).value == edl.total_frames, fmt
    assert tl.duration().rescaled_to(fps).value == edl.total_frames, fmt

    faded = [(s.start_frame, round(s.transition.duration * fps), s.transition.style) for s in edl.shots[1:]
             if s.transition.style != "cut" and s.transition.duration > 0]
    kept = [f for f in faded if fmt == "otio" or f[2] in EXPRESSES[fmt]]
    if fmt == "fcpxml":  # the adapter reads no transitions: the file itself shows them
        root = ET.parse(path).getroot()
        got_t = [(int(_frames(t.get("offset"), fps)), int(_frames(t.get("duration"), fps)))
                 for t in root.iter("transition")]
        assert got_t == [(a, n) for a, n, _ in kept], fmt
    else:
        got_t = [(video.range_of_child(t).start_time.rescaled_to(fps).value, t.in_offset.value,
                  t.out_offset.rescaled_to(fps).value) for t in video if isinstance(t, otio.schema.Transition)]
        assert [(a, 0, n) for a, n, _ in kept] == [(a, i, o) for a, i, o in got_t], (fmt, got_t[:3], kept[:3])

    if fmt == "edl":
        assert not tl.audio_tracks()  # picture only
        return tl
    (audio,) = tl.audio_tracks()
    (song,) = audio.find_clips()
    assert song.media_reference.target_url == song_url, fmt
    assert song.source_range.start_time.rescaled_to(fps).value == round(edl.song.start * fps), fmt
    assert song.source_range.duration.rescaled_to(fps).value == edl.total_frames, fmt
    assert song.trimmed_range_in_parent().start_time.value == 0, fmt

    want = expected_markers(edl, bm)
    if fmt == "fcpxml":  # markers live on the clip they fall in, in its source time
        got_m = []
        for clip in clips:
            rec, src = clip.trimmed_range_in_parent(), clip.source_range
            for m in clip.markers:
                f = m.marked_range.start_time.rescaled_to(fps).value - src.start_time.rescaled_to(fps).value \
                    + rec.start_time.rescaled_to(fps).value
                got_m.append((int(f), m.name.removeprefix("section: ")))
    else:
        got_m = [(int(m.marked_range.start_time.rescaled_to(fps).value), m.name) for m in tl.tracks.markers]
    punches = sorted(f for f, name in got_m if name == "punch")
    assert punches == sorted(f for s in edl.shots for f in s.accents), fmt
    assert sorted(m for m in got_m if m[1] != "punch") == want, (fmt, sorted(got_m)[:5], want[:5])
    return tl


def _frames(value: str, fps: int) -> float:
    from fractions import Fraction

    return Fraction(value.rstrip("s")) * fps
