"""Issue 23: one edit -> OTIO, FCP 7 XML, FCPXML and CMX 3600 timelines, read back by OpenTimelineIO's
adapters; and each adapter mistake fixed in beatsync.render.timelines, shown on the adapter itself."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import opentimelineio as otio
import pytest

from beatsync.contracts import Section
from beatsync.contracts.edit import TIMELINE_EXTENSIONS, TIMELINE_FORMATS, timeline_rate_problem
from beatsync.editing import ClipInfo, plan, resolve_config
from beatsync.errors import InvalidRequest
from beatsync.render.timelines import (Media, build_timeline, format_of, read_timeline, render_timeline,
                                       write_timeline)
from tests.timelines import check_round_trip, source_in
from tests.unit.test_edit_render import beat_map

SECTIONS = [Section(name="verse", start_time=0, end_time=12, energy=0.4, label="A"),
            Section(name="chorus", start_time=12, end_time=20, energy=1.0, label="B")]


def edit(fps=25, style="fade", **more):
    bm = beat_map(20.0, sections=SECTIONS)
    clips = [ClipInfo(i, f"c{i}.mp4", d, (0.5,) * int(d * 2 + 1), cuts=(1.7,)) for i, d in enumerate((6.0, 9.0, 30.0))]
    cfg = resolve_config("music_video", {"sync_mode": "every_other", "output_fps": fps, "transition_style": style,
                                         "preview_only": True, "preview_duration": 10, **more})
    return plan(bm, clips, cfg), bm


RATES = [30000 / 1001, 25, 30]


def media(tmp_path, rates=RATES):
    return Media(str(tmp_path / "song.wav"), [str(tmp_path / f"c{i}.mp4") for i in range(3)], clip_rates=list(rates))


@pytest.mark.parametrize("fmt", TIMELINE_FORMATS)
def test_every_format_reads_back_as_the_edit(tmp_path, fmt):
    edl, bm = edit()
    assert edl.song.start > 0 and any(s.transition.style == "fade" for s in edl.shots)  # a preview window, fades
    path = str(tmp_path / ("edit" + TIMELINE_EXTENSIONS[fmt]))
    assert write_timeline(edl, bm, media(tmp_path), path) == []
    check_round_trip(path, edl, bm, [(tmp_path / f"c{i}.mp4").as_uri() for i in range(3)],
                     (tmp_path / "song.wav").as_uri(), [f"c{i}.mp4" for i in range(3)], RATES)


def test_transitions_a_format_cannot_express_are_cuts_and_named(tmp_path):
    edl, bm = edit(style="zoom", punch=True, sync_mode="downbeats", min_shot_duration=3)
    zooms = sum(s.transition.style == "zoom" for s in edl.shots[1:])
    punches = sum(len(s.accents) for s in edl.shots)
    assert zooms > 0 and punches > 0
    assert write_timeline(edl, bm, media(tmp_path), str(tmp_path / "a.otio")) == []
    kept = read_timeline(str(tmp_path / "a.otio"))
    assert [t.metadata["beatsync"]["style"] for t in kept.video_tracks()[0] if isinstance(t, otio.schema.Transition)] \
        == ["zoom"] * zooms
    for fmt in ("fcp_xml", "fcpxml", "edl"):
        path = str(tmp_path / ("a" + TIMELINE_EXTENSIONS[fmt]))
        notes = write_timeline(edl, bm, media(tmp_path), path)
        assert f"{fmt}: {zooms} zoom transition(s) written as cuts (the format has no such transition)" in notes
        assert any(f"{punches} punch zoom(s)" in n for n in notes)
        check_round_trip(path, edl, bm, [(tmp_path / f"c{i}.mp4").as_uri() for i in range(3)],
                         (tmp_path / "song.wav").as_uri(), clip_rates=RATES)


def test_a_smart_crop_is_named_as_lost(tmp_path):
    edl, bm = edit(fit="smart")
    assert write_timeline(edl, bm, media(tmp_path), str(tmp_path / "a.otio")) == []  # metadata.beatsync.fit
    assert write_timeline(edl, bm, media(tmp_path), str(tmp_path / "a.xml")) == [
        "fcp_xml: the subject-following crop of fit smart is not in the timeline (the editor frames the clips its "
        "own way)"]


def test_the_extension_decides_the_format_and_others_are_refused():
    assert [format_of(f"x{TIMELINE_EXTENSIONS[f]}") for f in TIMELINE_FORMATS] == list(TIMELINE_FORMATS)
    assert format_of("A.FCPXML") == "fcpxml"
    with pytest.raises(InvalidRequest) as e:
        format_of("cut.aaf")
    assert e.value.code == "invalid_timeline" and ".otio, .xml, .fcpxml, .edl" in e.value.message


def test_timecode_formats_need_a_smpte_rate(tmp_path):
    edl, bm = edit(fps=15)
    assert timeline_rate_problem("edl", 15) and timeline_rate_problem("fcp_xml", 15)
    assert timeline_rate_problem("fcpxml", 15) is None and timeline_rate_problem("edl", 30) is None
    with pytest.raises(InvalidRequest) as e:
        render_timeline("edl", edl, bm, media(tmp_path))
    assert e.value.code == "timeline_rate"
    assert write_timeline(edl, bm, media(tmp_path), str(tmp_path / "x.fcpxml")) == []  # FCPXML: any rate
    check_round_trip(str(tmp_path / "x.fcpxml"), edl, bm, [(tmp_path / f"c{i}.mp4").as_uri() for i in range(3)],
                     (tmp_path / "song.wav").as_uri(), clip_rates=RATES)


def test_fcp_xml_fixes_transition_alignment_sequence_format_and_double_rate(tmp_path):
    edl, bm = edit(fps=30)
    m = media(tmp_path)
    raw = ET.fromstring(otio.adapters.write_to_string(build_timeline(edl, bm, m), adapter_name="fcp_xml"))
    # the adapter: a transition with in_offset 0 is "start-black", the format is empty, the rate written twice
    assert {a.text for a in raw.iter("alignment")} == {"start-black"}
    assert len(raw.find(".//sequence/media/video/format")) == 0
    assert len(next(raw.iter("clipitem")).findall("./rate")) == 2
    ours = ET.fromstring(render_timeline("fcp_xml", edl, bm, m).split("\n", 2)[2])
    assert {a.text for a in ours.iter("alignment")} == {"start"}
    sc = ours.find(".//sequence/media/video/format/samplecharacteristics")
    assert (sc.findtext("width"), sc.findtext("height"), sc.findtext("rate/timebase")) == (
        str(edl.width), str(edl.height), "30")
    assert all(len(c.findall("./rate")) == 1 for c in ours.iter("clipitem"))
    # the outgoing clip of a dissolve plays on under it: the adapter gives it no handle when in_offset is 0
    def before_transitions(root):
        items = list(root.find(".//video/track"))
        return [a for a, b in zip(items, items[1:]) if b.tag == "transitionitem"]

    assert all(c.findtext("end") != "-1" for c in before_transitions(raw))
    faded = {s.index - 1: round(s.transition.duration * 30) for s in edl.shots[1:] if s.transition.style == "fade"}
    outgoing = before_transitions(ours)
    assert len(outgoing) == len(faded) > 0
    for c, (i, n) in zip(outgoing, sorted(faded.items())):
        shot = edl.shots[i]
        assert c.findtext("end") == "-1"
        assert int(c.findtext("out")) == source_in(edl, shot, RATES[shot.clip]) + shot.frames + n
    # a clip at 29.97 keeps its own rate on its file (ntsc), its in/out counted at the sequence's
    files = {f.findtext("name"): (f.findtext("rate/timebase"), f.findtext("rate/ntsc")) for f in ours.iter("file")
             if f.findtext("name")}
    assert files["c0.mp4"] == ("30", "TRUE") and files["c1.mp4"] == ("25", "FALSE")


def test_fcpx_reader_fixes_float_truncation_and_audio_clips(tmp_path):
    from otio_fcpx_xml_adapter import fcpx_xml

    # int(float(7) / float(25) * 25) == 6 in floating point: the adapter reads 7 frames as 6
    bad = next(n for n in range(1, 500) if fcpx_xml.to_rational_time(f"{n}/25s", 25).value != n)
    assert fcpx_xml.to_rational_time(f"{bad}/25s", 25).value == bad - 1
    from beatsync.render.timelines import _fcpx_frames

    assert all(_fcpx_frames(f"{n}/25s", 25) == n for n in range(1, 5000))
    edl, bm = edit(fps=25)
    path = tmp_path / "e.fcpxml"
    write_timeline(edl, bm, media(tmp_path), str(path))
    raw = otio.adapters.read_from_file(str(path), adapter_name="fcpx_xml")
    raw = raw[0] if isinstance(raw, otio.schema.SerializableCollection) else raw
    assert [t.kind for t in raw.tracks] == ["Video", "Video"]  # the adapter: the song's lane is "video"
    fixed = read_timeline(str(path))
    assert sorted(t.kind for t in fixed.tracks) == ["Audio", "Video"]


def test_fcpxml_has_the_frame_size_one_project_and_frame_aligned_times(tmp_path):
    edl, bm = edit(fps=25)
    root = ET.fromstring(render_timeline("fcpxml", edl, bm, media(tmp_path)).split("\n", 2)[2])
    fmt = root.find("resources/format")
    assert (fmt.get("width"), fmt.get("height"), fmt.get("frameDuration")) == (str(edl.width), str(edl.height), "1/25s")
    assert root.find("asset-clip") is None and len(root.findall("library/event/project")) == 1
    from fractions import Fraction

    for el in root.iter("asset-clip"):
        for attr in ("offset", "start", "duration"):
            assert (Fraction(el.get(attr).rstrip("s")) * 25).denominator == 1, (attr, el.get(attr))


def test_cmx_reader_fix_gives_a_dissolve_its_incoming_clip_and_reels_are_unique(tmp_path):
    edl, bm = edit(fps=25)
    m = Media(str(tmp_path / "song.wav"), [str(tmp_path / n) for n in ("interview_a.mp4", "interview_b.mp4", "c.mp4")])
    path = tmp_path / "e.edl"
    write_timeline(edl, bm, m, str(path))
    urls = [(tmp_path / n).as_uri() for n in ("interview_a.mp4", "interview_b.mp4", "c.mp4")]
    raw = otio.adapters.read_from_file(str(path), adapter_name="cmx_3600", rate=25)
    got = [c.media_reference.target_url for c in raw.find_clips()]
    want = [urls[s.clip] for s in edl.shots]
    assert got != want  # the adapter ignores "* TO CLIP:": a dissolve's incoming clip gets the outgoing one's media
    assert [c.media_reference.target_url for c in read_timeline(str(path), rate=25).find_clips()] == want
    text = path.read_text()
    # the adapter's reels would be INTERVIE for both interview clips
    reels = {line.split()[1] for line in text.splitlines() if line[:3].isdigit()}
    assert {"INTERVIE", "CLIP001"} <= reels and "FCM: NON-DROP FRAME" in text


def test_media_names_come_from_urls():
    m = Media("https://h/a/my%20song.mp3?sig=1", ["https://h/b/clip%201.mov", "gs://bucket/x/y.mp4"])
    assert (m.name(0), m.name(1)) == ("clip 1.mov", "y.mp4")
    edl, bm = edit(fps=25)
    tl = build_timeline(edl, bm, m)
    assert {c.media_reference.target_url for c in tl.video_tracks()[0].find_clips()} <= {
        "https://h/b/clip%201.mov", "gs://bucket/x/y.mp4"} | {m.url(2, "c2.mp4")}
    assert next(iter(tl.audio_tracks()[0].find_clips())).name == "my song.mp3"
