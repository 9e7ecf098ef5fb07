"""One edit -> the timelines editors import: OpenTimelineIO (``.otio``), Final Cut Pro 7 XML
(``.xml``: Premiere Pro, DaVinci Resolve), FCPXML (``.fcpxml``: Final Cut Pro, Resolve) and CMX 3600
(``.edl``: picture cut only). The formats and their extensions are defined once, in
``schemas/create_request.schema.json#/$defs/TimelineFormat``.

:func:`build_timeline` makes one OpenTimelineIO timeline from the EDL; each format is written from it:

- Times are frames of the sequence rate (the EDL's ``fps``): a shot's record range is its output frames;
  its source in-point is ``round(source_in * fps)`` frames into the clip (the exact seconds are kept in
  the ``.otio`` metadata), as Premiere's and Resolve's own exports count clips of another rate.
- Track "Video": one clip per shot, named by its source file (editors relink by name), on an external
  reference (a file URL, or the job's source URL) whose available range is the clip's length at its own
  rate when known. A transition other than a cut: ``in_offset`` 0, ``out_offset`` its length, as the render
  does it (the outgoing shot plays on under the first frames of the incoming one).
- Track "Audio": the song window as one clip (a preview starts mid-song: the clip's source in-point).
- Markers on the timeline: every beat (``downbeat`` RED, ``beat`` GREEN), each section (BLUE, named by
  the section, spanning it), each punch accent (YELLOW).

What each writer keeps, and the adapter mistakes fixed here (each has a test in
``tests/unit/test_timelines.py``):

- ``otio``: everything (every transition style, with ``metadata.beatsync``).
- ``fcp_xml`` (``otio-fcp-adapter``): fade as a Cross Dissolve. Fixed: the adapter aligns a transition
  whose ``in_offset`` is 0 as ``start-black`` (a fade from black at the start of a track): written as
  ``start``, and gives the outgoing clip no handle under it (it tests the wrong offset): it ends with the
  transition (``end`` -1) and its out-point moves by the transition's length; it leaves the sequence
  ``<format/>`` empty: the frame size and rate are filled in; it writes ``<rate>`` twice in each clip item: once.
- ``fcpxml``: written here, not by ``otio-fcpx-xml-adapter``, whose writer drops transitions, timeline
  markers and the frame size, writes source in-points off the frame grid and lists every shot again as a
  top-level event clip. Its reader truncates ``frames = int(seconds * fps)`` in floating point (about 5 %
  of frame counts come back one short), and reads no ``asset-clip`` as audio (it tests an XML element's truth
  value, which is false without children): both fixed in :func:`read_timeline`. Fade as a Cross Dissolve;
  markers on the clip they fall in (FCPXML has no sequence markers).
- ``edl`` (``otio-cmx3600-adapter``): the picture cut, fade as a dissolve; no song (picture only), no
  markers (``LOC`` comments are an Avid extension that editors read differently). Reel names are made
  unique per clip (the adapter's 8-character truncation of file names can make two clips one reel).
  Its reader ignores ``* TO CLIP:`` (the incoming clip of a dissolve gets the outgoing clip's media):
  fixed in :func:`read_timeline`.

Transitions a format cannot express are written as cuts, and :func:`write_timeline` returns a line naming
them (e.g. ``edl: 4 zoom transitions written as cuts``); punch accents are markers only, except in OTIO.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree as ET

import opentimelineio as otio

from ..contracts import BeatMap, EditDecisionList
from ..contracts.edit import TIMELINE_EXTENSIONS, TIMELINE_FORMATS, timeline_rate_problem
from ..errors import InvalidRequest

#: OpenTimelineIO adapter of each format (fcpxml is written here, read by ``fcpx_xml``)
ADAPTERS = {"otio": "otio_json", "fcp_xml": "fcp_xml", "fcpxml": "fcpx_xml", "edl": "cmx_3600"}
#: the transition styles each format expresses (the others become cuts, with a warning)
EXPRESSES = {"otio": set(), "fcp_xml": {"fade"}, "fcpxml": {"fade"}, "edl": {"fade"}}
#: Final Cut Pro's Cross Dissolve
FCPX_CROSS_DISSOLVE = "FxPlug:4731E73A-8DAC-4113-9A30-AE85B1761265"


def format_of(path: str) -> str:
    """The timeline format a path's extension names; anything else is refused with the list."""
    ext = os.path.splitext(path)[1].lower()
    for fmt, e in TIMELINE_EXTENSIONS.items():
        if e == ext:
            return fmt
    raise InvalidRequest(f"{path}: a timeline's extension must be one of "
                         f"{', '.join(TIMELINE_EXTENSIONS[f] for f in TIMELINE_FORMATS)} (it decides the format)",
                         code="invalid_timeline")


def file_url(path_or_url: str) -> str:
    """A URL as is; a local path as an absolute ``file://`` URL."""
    if "://" in path_or_url:
        return path_or_url
    return Path(path_or_url).resolve().as_uri()


def url_name(url: str, default: str) -> str:
    """The file name a URL ends with (``https://h/a/b%20c.mp4?x`` -> ``b c.mp4``), else ``default``."""
    name = unquote(os.path.basename(urlsplit(url).path)) if "://" in url else os.path.basename(url)
    return name or default


@dataclass(frozen=True)
class Media:
    """Where the song and clips are, as an editor should find them (local paths or URLs); each clip is named
    by its URL's file name (editors relink by name); ``clip_rates``: each clip's own frame rate where known."""

    song_url: str
    clip_urls: list[str]
    clip_rates: list[float | None] = field(default_factory=list)

    def name(self, i: int) -> str:
        return url_name(self.clip_urls[i], f"clip_{i}") if i < len(self.clip_urls) else f"clip_{i}"

    def url(self, i: int, fallback: str) -> str:
        return file_url(self.clip_urls[i]) if i < len(self.clip_urls) else fallback

    def rate(self, i: int) -> float | None:
        r = self.clip_rates[i] if i < len(self.clip_rates) else None
        return float(r) if r else None


def media_of(otio_path: str, clips: int) -> tuple[str, list[str], list[float | None]] | None:
    """``(song URL, [clip URLs], [clip rates])`` as an ``.otio`` written here names them, or None if it does not
    name them all."""
    urls: dict[int, str] = {}
    rates: dict[int, float | None] = {}
    try:
        timeline = otio.adapters.read_from_file(otio_path, adapter_name="otio_json")
        for clip in timeline.video_tracks()[0].find_clips() if timeline.video_tracks() else []:
            meta = clip.metadata.get("beatsync", {})
            i = meta.get("clip")
            if isinstance(i, int):
                urls[i], rates[i] = clip.media_reference.target_url, meta.get("clip_rate")
        songs = [c.media_reference.target_url for t in timeline.audio_tracks() for c in t.find_clips()]
    except Exception:  # noqa: BLE001 - not a timeline of ours: the caller asks for the media instead
        return None
    if not songs or sorted(urls) != list(range(clips)):
        return None
    return songs[0], [urls[i] for i in range(clips)], [rates[i] for i in range(clips)]


def source_in_frames(edl: EditDecisionList, shot, rate: float | None = None) -> int:
    """A shot's in-point in frames of the sequence rate: the time of the first source frame the render shows
    (the latest at or before ``source_in``, within the reader's 0.1 ms; a clip's frames at ``i / rate``) on
    the sequence's frame grid. Exact for a clip at the sequence rate; without its rate a clip is taken to
    run at the sequence's."""
    r = rate or edl.fps
    t = shot.source_in + 1e-4  # the reader's comparison, in its float arithmetic
    i = math.floor(t * r)
    while (i + 1) / r <= t:
        i += 1
    while i > 0 and i / r > t:
        i -= 1
    return int(round(i / r * edl.fps))


def build_timeline(edl: EditDecisionList, beat_map: BeatMap, media: Media) -> otio.schema.Timeline:
    fps = edl.fps
    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    timeline = otio.schema.Timeline(name="beatsync edit")
    timeline.global_start_time = rt(0, fps)
    video = otio.schema.Track(name="Video", kind=otio.schema.TrackKind.Video)
    clips = {c.index: c for c in edl.clips}
    for shot in edl.shots:
        if shot.index > 0 and shot.transition.style != "cut" and shot.transition.duration > 0:
            style = shot.transition.style
            video.append(otio.schema.Transition(
                name=style, transition_type="SMPTE_Dissolve" if style == "fade" else "Custom_Transition",
                in_offset=rt(0, fps), out_offset=rt(int(round(shot.transition.duration * fps)), fps),
                metadata={"beatsync": {"style": style, "duration": shot.transition.duration}}))
        ref = clips[shot.clip]
        rate = media.rate(shot.clip)  # the in-point counts with it; the file's timecode only if SMPTE can
        if not (rate and otio.opentime.RationalTime.is_valid_timecode_rate(rate)):
            rate = fps  # a file's timecode must run at a SMPTE rate: else counted at the sequence's
        name = media.name(shot.clip)
        reference = otio.schema.ExternalReference(
            target_url=media.url(shot.clip, ref.name),
            available_range=tr(rt(0, rate), rt(math.ceil(ref.duration * rate - 1e-6), rate)))
        reference.name = name
        video.append(otio.schema.Clip(
            name=name, media_reference=reference,
            source_range=tr(rt(source_in_frames(edl, shot, media.rate(shot.clip)), fps), rt(shot.frames, fps)),
            metadata={"beatsync": {"shot": shot.index, "clip": shot.clip, "source_in": shot.source_in,
                                   "clip_rate": media.rate(shot.clip), "section": shot.section,
                                   "accents": list(shot.accents), "continues": shot.continues}}))
    audio = otio.schema.Track(name="Audio", kind=otio.schema.TrackKind.Audio)
    song_in = int(round(edl.song.start * fps))
    song_len = max(math.ceil(beat_map.duration * fps - 1e-6), song_in + edl.total_frames)
    song_ref = otio.schema.ExternalReference(
        target_url=file_url(media.song_url), available_range=tr(rt(0, fps), rt(song_len, fps)))
    song_ref.name = url_name(media.song_url, "song")
    audio.append(otio.schema.Clip(
        name=song_ref.name, media_reference=song_ref,
        source_range=tr(rt(song_in, fps), rt(edl.total_frames, fps)),
        metadata={"beatsync": {"song_start": edl.song.start}}))
    timeline.tracks.append(video)
    timeline.tracks.append(audio)

    start = edl.song.start
    markers = timeline.tracks.markers
    for b in beat_map.beats:
        f = int(round((b.time - start) * fps))
        if 0 <= f < edl.total_frames:
            markers.append(otio.schema.Marker(
                name="downbeat" if b.is_downbeat else "beat", color="RED" if b.is_downbeat else "GREEN",
                marked_range=tr(rt(f, fps), rt(0, fps)), metadata={"beatsync": {"beat": b.index, "time": b.time}}))
    for s in beat_map.sections:
        a = max(0, int(round((s.start_time - start) * fps)))
        e = min(edl.total_frames, int(round((s.end_time - start) * fps)))
        if e > a:
            markers.append(otio.schema.Marker(
                name=s.name, color="BLUE", marked_range=tr(rt(a, fps), rt(e - a, fps)),
                metadata={"beatsync": {"section": s.name, "energy": s.energy}}))
    for shot in edl.shots:
        for f in shot.accents:
            markers.append(otio.schema.Marker(name="punch", color="YELLOW", marked_range=tr(rt(f, fps), rt(0, fps))))
    timeline.metadata["beatsync"] = {"audio_hash": edl.song.audio_hash, "fps": fps, "width": edl.width,
                                     "height": edl.height, "fit": edl.fit,
                                     "warnings": [w.model_dump() for w in edl.warnings]}
    return timeline


def losses(edl: EditDecisionList, fmt: str) -> list[str]:
    """What ``fmt`` cannot express of this edit, one line each (empty for OTIO)."""
    if fmt == "otio":
        return []
    out = []
    dropped: dict[str, int] = {}
    for s in edl.shots[1:]:
        style = s.transition.style
        if style != "cut" and s.transition.duration > 0 and style not in EXPRESSES[fmt]:
            dropped[style] = dropped.get(style, 0) + 1
    if dropped:
        out.append(f"{fmt}: " + ", ".join(f"{n} {style}" for style, n in sorted(dropped.items()))
                   + " transition(s) written as cuts (the format has no such transition)")
    punches = sum(len(s.accents) for s in edl.shots)
    if punches:
        out.append(f"{fmt}: {punches} punch zoom(s) " + ("dropped" if fmt == "edl" else "written as markers only"))
    if edl.fit == "smart":
        out.append(f"{fmt}: the subject-following crop of fit smart is not in the timeline (the editor frames "
                   "the clips its own way)")
    return out


def _simplified(timeline: otio.schema.Timeline, fmt: str) -> otio.schema.Timeline:
    """A copy whose transitions the format cannot express are removed (cuts)."""
    t = timeline.deepcopy()
    video = t.video_tracks()[0]
    for item in list(video):
        if isinstance(item, otio.schema.Transition) and item.metadata["beatsync"]["style"] not in EXPRESSES[fmt]:
            video.remove(item)
    return t


# -- Final Cut Pro 7 XML ---------------------------------------------------------------------------------

def _fcp_xml(timeline: otio.schema.Timeline, edl: EditDecisionList) -> str:
    t = _simplified(timeline, "fcp_xml")
    for item in t.video_tracks()[0]:
        if isinstance(item, otio.schema.Transition):
            # the adapter calls in_offset 0 "start-black"; the transition starts at the edit point
            item.metadata["fcp_xml"] = {"alignment": "start"}
            item.name = "Cross Dissolve"
    text = otio.adapters.write_to_string(t, adapter_name="fcp_xml")
    root = ET.fromstring(text)
    for seq in root.iter("sequence"):
        fmt = seq.find("./media/video/format")
        if fmt is not None and len(fmt) == 0:  # the adapter leaves it empty
            sc = ET.SubElement(fmt, "samplecharacteristics")
            rate = ET.SubElement(sc, "rate")
            ET.SubElement(rate, "timebase").text = str(edl.fps)
            ET.SubElement(rate, "ntsc").text = "FALSE"
            ET.SubElement(sc, "width").text = str(edl.width)
            ET.SubElement(sc, "height").text = str(edl.height)
            ET.SubElement(sc, "anamorphic").text = "FALSE"
            ET.SubElement(sc, "pixelaspectratio").text = "square"
            ET.SubElement(sc, "fielddominance").text = "none"
    for track in root.iter("track"):
        items = list(track)
        for prev, item in zip(items, items[1:]):
            if item.tag == "transitionitem" and prev.tag == "clipitem":
                # the adapter gives the outgoing clip its handle only when in_offset is not 0 (it tests the
                # wrong offset): it plays on under the transition, so it ends with it (end -1) and its out
                # point moves by the transition's length
                length = int(item.findtext("end")) - int(item.findtext("start"))
                prev.find("end").text = "-1"
                prev.find("out").text = str(int(prev.findtext("out")) + length)
    for item in root.iter("clipitem"):
        rates = item.findall("./rate")
        for extra in rates[1:]:  # the adapter writes the clip item's rate twice
            item.remove(extra)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- FCPXML ----------------------------------------------------------------------------------------------

def _secs(frames: int, fps: int) -> str:
    f = Fraction(frames, fps)
    if f == 0:
        return "0s"
    return f"{f.numerator}s" if f.denominator == 1 else f"{f.numerator}/{f.denominator}s"


def _format_name(width: int, height: int, fps: int) -> str | None:
    lines = {(1920, 1080): "1080p", (1280, 720): "720p", (3840, 2160): "2160p"}
    return f"FFVideoFormat{lines[(width, height)]}{fps}" if (width, height) in lines and fps in (24, 25, 30, 50, 60) else None


def _fcpxml(timeline: otio.schema.Timeline, edl: EditDecisionList) -> str:
    fps = edl.fps
    root = ET.Element("fcpxml", version="1.8")
    resources = ET.SubElement(root, "resources")
    fmt = {"id": "r1", "frameDuration": _secs(1, fps), "width": str(edl.width), "height": str(edl.height)}
    name = _format_name(edl.width, edl.height, fps)
    if name:
        fmt["name"] = name
    ET.SubElement(resources, "format", fmt)
    ids = iter(f"r{i}" for i in range(2, 10_000))
    dissolve = next(ids)
    ET.SubElement(resources, "effect", id=dissolve, name="Cross Dissolve", uid=FCPX_CROSS_DISSOLVE)
    assets: dict[str, str] = {}

    def asset(clip: otio.schema.Clip, video: bool) -> str:
        ref = clip.media_reference
        if ref.target_url not in assets:
            assets[ref.target_url] = next(ids)
            length = ref.available_range.duration.to_seconds()
            attrs = {"id": assets[ref.target_url], "name": ref.name or clip.name, "src": ref.target_url,
                     "start": "0s", "duration": _secs(math.ceil(length * fps - 1e-6), fps), "format": "r1",
                     "hasVideo": "1" if video else "0", "hasAudio": "0" if video else "1"}
            if not video:
                attrs["audioSources"], attrs["audioChannels"] = "1", "2"
            ET.SubElement(resources, "asset", attrs)
        return assets[ref.target_url]

    library = ET.SubElement(root, "library")
    event = ET.SubElement(library, "event", name="beatsync")
    project = ET.SubElement(event, "project", name=timeline.name)
    seq = ET.SubElement(project, "sequence", format="r1", duration=_secs(edl.total_frames, fps), tcStart="0s",
                        tcFormat="NDF", audioLayout="stereo", audioRate="48k")
    spine = ET.SubElement(seq, "spine")
    t = _simplified(timeline, "fcpxml")
    video_track, audio_track = t.video_tracks()[0], t.audio_tracks()[0]
    placed: list[tuple[int, int, int, ET.Element]] = []  # (record start, record end, source start, element)
    for item in video_track:
        if isinstance(item, otio.schema.Transition):
            at = video_track.range_of_child(item).start_time.to_frames()  # the edit point
            tr = ET.SubElement(spine, "transition", name="Cross Dissolve", offset=_secs(at, fps),
                               duration=_secs(item.out_offset.to_frames(), fps))
            ET.SubElement(tr, "filter-video", ref=dissolve, name="Cross Dissolve")
            continue
        rec = video_track.range_of_child(item)
        a, n = rec.start_time.to_frames(), rec.duration.to_frames()
        src = item.source_range.start_time.to_frames()
        el = ET.SubElement(spine, "asset-clip", ref=asset(item, True), name=item.name, offset=_secs(a, fps),
                           start=_secs(src, fps), duration=_secs(n, fps), format="r1", tcFormat="NDF")
        placed.append((a, a + n, src, el))
    (song,) = audio_track.find_clips()
    first = placed[0]
    song_el = ET.Element("asset-clip", ref=asset(song, False), name=song.name, lane="-1",
                         offset=_secs(first[2], fps), start=_secs(song.source_range.start_time.to_frames(), fps),
                         duration=_secs(edl.total_frames, fps), format="r1", tcFormat="NDF")
    first[3].append(song_el)  # connected below the first shot, before the markers (the DTD's order)
    markers: list[tuple[int, int, str, str]] = []  # (frame, length, value, completed)
    for m in t.tracks.markers:
        f = m.marked_range.start_time.to_frames()
        done = {"RED": "0", "GREEN": "1"}.get(m.color, "")
        markers.append((f, 1, m.name if m.color != "BLUE" else f"section: {m.name}", done))
    for f, length, value, done in sorted(markers):
        for a, b, src, el in placed:
            if a <= f < b:
                attrs = {"start": _secs(src + f - a, fps), "duration": _secs(length, fps), "value": value}
                if done:
                    attrs["completed"] = done
                ET.SubElement(el, "marker", attrs)
                break
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- CMX 3600 --------------------------------------------------------------------------------------------

def _reels(edl: EditDecisionList, media: Media) -> dict[int, str]:
    """One reel name (at most 8 characters, letters and digits) per clip, unique."""
    out: dict[int, str] = {}
    for c in edl.clips:
        stem = re.sub(r"[^A-Za-z0-9]", "", os.path.splitext(media.name(c.index))[0])[:8].upper()
        out[c.index] = stem if stem and stem not in out.values() else f"CLIP{c.index:03d}"
    return out


def _cmx(timeline: otio.schema.Timeline, edl: EditDecisionList, media: Media) -> str:
    t = _simplified(timeline, "edl")
    reels = _reels(edl, media)
    picture = otio.schema.Timeline(name=t.name)
    picture.global_start_time = t.global_start_time
    video = t.video_tracks()[0]
    t.tracks.remove(video)
    for clip in video.find_clips():
        clip.metadata["cmx_3600"] = {"reel": reels[clip.metadata["beatsync"]["clip"]]}
    picture.tracks.append(video)
    text = otio.adapters.write_to_string(picture, adapter_name="cmx_3600", rate=edl.fps)
    return text.replace("\n\n", "\nFCM: NON-DROP FRAME\n\n", 1)


# -- writing and reading ---------------------------------------------------------------------------------

def render_timeline(fmt: str, edl: EditDecisionList, beat_map: BeatMap, media: Media,
                    timeline: otio.schema.Timeline | None = None) -> str:
    """The text of one format."""
    problem = timeline_rate_problem(fmt, edl.fps)
    if problem:
        raise InvalidRequest(problem, code="timeline_rate")
    timeline = timeline or build_timeline(edl, beat_map, media)
    if fmt == "otio":
        return otio.adapters.write_to_string(timeline, adapter_name="otio_json")
    if fmt == "fcp_xml":
        return _fcp_xml(timeline, edl)
    if fmt == "fcpxml":
        return _fcpxml(timeline, edl)
    if fmt == "edl":
        return _cmx(timeline, edl, media)
    raise InvalidRequest(f"timeline format {fmt!r}: one of {', '.join(TIMELINE_FORMATS)}", code="invalid_timeline")


def write_timeline(edl: EditDecisionList, beat_map: BeatMap, media: Media, path: str, fmt: str | None = None
                   ) -> list[str]:
    """Write one timeline (its format from ``fmt``, else from the extension); returns what it could not keep."""
    fmt = fmt or format_of(path)
    text = render_timeline(fmt, edl, beat_map, media)
    tmp = f"{path}.part"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return losses(edl, fmt)


def _fcpx_frames(value: str | None, fps) -> int:
    """``"38/25s"`` at 25 fps -> 38, exactly (the adapter's ``int(float(a) / float(b) * fps)`` may give 37)."""
    if value in (None, "0s"):
        return 0
    return int(round(Fraction(value.rstrip("s")) * Fraction(fps)))


def _fixed_fcpx_reader():
    from otio_fcpx_xml_adapter import fcpx_xml as mod

    class Reader(mod.FcpxXml):
        def _number_of_frames(self, time_value, format_id):
            total, rate = self._format_frame_duration(format_id)
            return _fcpx_frames(time_value, Fraction(int(rate), int(total)))

        def _audio_only(self, element):
            # the adapter tests ``if asset and ...``: an <asset> without children is false, so a song's
            # asset-clip never reads as audio
            if element.tag == "asset-clip":
                asset = self._asset_by_id(element.get("ref"))
                return asset is not None and asset.get("hasVideo", "0") == "0"
            return super()._audio_only(element)

    def to_rational_time(value, fps):
        return otio.opentime.RationalTime(_fcpx_frames(value, fps), int(fps))

    return mod, Reader, to_rational_time


def read_timeline(path: str, rate: int = 30) -> otio.schema.Timeline:
    """A timeline file read back by its OpenTimelineIO adapter, with the reader mistakes named in the module
    docstring fixed (a CMX 3600 EDL does not carry its rate: ``rate``)."""
    fmt = format_of(path)
    text = Path(path).read_text(encoding="utf-8")
    if fmt == "fcpxml":
        mod, Reader, to_rational_time = _fixed_fcpx_reader()
        saved = mod.to_rational_time
        mod.to_rational_time = to_rational_time
        try:
            result = Reader(text).to_otio()
        finally:
            mod.to_rational_time = saved
        if isinstance(result, otio.schema.SerializableCollection):
            (result,) = list(result)
        return result
    if fmt == "edl":
        from otio_cmx3600_adapter import cmx_3600

        handler = cmx_3600.CommentHandler
        saved = handler.comment_id_map
        handler.comment_id_map = type(saved)([*saved.items(), ("TO CLIP", "media_reference")])
        try:
            return cmx_3600.read_from_string(text, rate=rate)
        finally:
            handler.comment_id_map = saved
    return otio.adapters.read_from_string(text, adapter_name=ADAPTERS[fmt])
