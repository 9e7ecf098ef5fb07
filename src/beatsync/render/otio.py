"""The edit as an OpenTimelineIO timeline (``edit.otio``), to finish the cut in an editor.

- Track "Video": one clip per shot, its source range (in-point and length, at the output rate)
  on an external reference to the clip, and between shots a transition for each non-cut
  transition: ``in_offset`` 0 and ``out_offset`` the transition's length, as the render does it (the
  outgoing shot plays on under the first frames of the incoming one); fade is an
  ``SMPTE_Dissolve``, the other styles ``Custom_Transition`` with ``metadata.beatsync.style``.
- Track "Audio": the song window as one clip.
- Markers on the timeline's stack (output time): every beat (``downbeat`` RED, ``beat`` GREEN),
  each section change (BLUE, named by the section, spanning it), each punch accent (YELLOW).
- ``metadata.beatsync``: the EDL's warnings and the song's audio hash; on each clip, its shot's
  ``continues`` (the take flows on from the previous clip: no cut).
"""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio

from ..contracts import BeatMap, EditDecisionList


def _url(path_or_url: str) -> str:
    if "://" in path_or_url:
        return path_or_url
    return Path(path_or_url).resolve().as_uri()


def build_timeline(edl: EditDecisionList, beat_map: BeatMap, clip_urls: list[str], song_url: str) -> otio.schema.Timeline:
    fps = edl.fps
    rt = otio.opentime.RationalTime
    tr = otio.opentime.TimeRange
    timeline = otio.schema.Timeline(name="beatsync edit")
    timeline.global_start_time = rt(0, fps)
    video = otio.schema.Track(name="Video", kind=otio.schema.TrackKind.Video)
    refs = {c.index: (clip_urls[c.index] if c.index < len(clip_urls) else c.name, c) for c in edl.clips}
    for shot in edl.shots:
        if shot.index > 0 and shot.transition.style != "cut" and shot.transition.duration > 0:
            style = shot.transition.style
            video.append(otio.schema.Transition(
                name=style, transition_type="SMPTE_Dissolve" if style == "fade" else "Custom_Transition",
                in_offset=rt(0, fps), out_offset=rt(int(round(shot.transition.duration * fps)), fps),
                metadata={"beatsync": {"style": style, "duration": shot.transition.duration}}))
        url, ref = refs[shot.clip]
        media = otio.schema.ExternalReference(
            target_url=_url(url), available_range=tr(rt(0, fps), otio.opentime.from_seconds(ref.duration, fps)))
        video.append(otio.schema.Clip(
            name=f"shot {shot.index}: {ref.name}", media_reference=media,
            source_range=tr(otio.opentime.from_seconds(shot.source_in, fps), rt(shot.frames, fps)),
            metadata={"beatsync": {"shot": shot.index, "clip": shot.clip, "source_in": shot.source_in,
                                   "section": shot.section, "accents": list(shot.accents),
                                   "continues": shot.continues}}))
    audio = otio.schema.Track(name="Audio", kind=otio.schema.TrackKind.Audio)
    audio.append(otio.schema.Clip(
        name="song", media_reference=otio.schema.ExternalReference(target_url=_url(song_url)),
        source_range=tr(otio.opentime.from_seconds(edl.song.start, fps), rt(edl.total_frames, fps))))
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
    timeline.metadata["beatsync"] = {"audio_hash": edl.song.audio_hash, "fps": fps,
                                     "warnings": [w.model_dump() for w in edl.warnings]}
    return timeline


def write_otio(edl: EditDecisionList, beat_map: BeatMap, clip_urls: list[str], song_url: str, path: str) -> str:
    otio.adapters.write_to_file(build_timeline(edl, beat_map, clip_urls, song_url), path, adapter_name="otio_json")
    return path
