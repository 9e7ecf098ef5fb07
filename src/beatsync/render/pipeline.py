"""The main job: song + clips + config -> video, thumbnail, EDL, OpenTimelineIO timeline and
beat map, side by side."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from ..contracts import BeatMap, EditConfig, EditDecisionList
from ..errors import InvalidRequest
from ..ports import BlobStore

MAX_CLIPS = 20
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class MakeResult:
    video: str
    thumbnail: str
    edl_path: str
    otio_path: str
    beat_map_path: str
    edl: EditDecisionList
    beat_map: BeatMap
    file_size: int
    duration: float
    decoded_frames: int


def make_video(
    song: str,
    clips: list[str],
    out_path: str,
    config: EditConfig,
    *,
    method: str = "hybrid",
    cache: BlobStore | None = None,
    max_audio_duration: float = 15 * 60.0,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    preset: str = "veryfast",
    max_clip_pixels: int = 4096 * 2304,
    song_url: str | None = None,
    clip_urls: list[str] | None = None,
) -> MakeResult:
    """Analyse, probe, plan, render; ``song_url`` / ``clip_urls`` name the media in ``edit.otio``
    (default: the local files)."""
    from ..analysis import analyze
    from ..editing import ClipInfo, plan
    from .encode import render
    from .motion import analyse_clip, normalise
    from .otio import write_otio
    from .probe import probe_clip

    if not clips:
        raise InvalidRequest("at least one clip is needed", code="no_clips")
    if len(clips) > MAX_CLIPS:
        raise InvalidRequest(f"{len(clips)} clips; at most {MAX_CLIPS}", code="too_many_clips")
    report = progress or (lambda pct, step: None)
    report(0.0, "analyze")
    beat_map = analyze(song, method, fps=config.output_fps, max_duration=max_audio_duration, cache=cache)
    report(15.0, "probe")
    probes = [probe_clip(c, max_pixels=max_clip_pixels) for c in clips]
    analyses = []
    for i, p in enumerate(probes):
        analyses.append(analyse_clip(p))
        report(15.0 + 10.0 * (i + 1) / len(probes), "motion")
    infos = [ClipInfo(i, os.path.basename(p.path), p.duration, m, p.keyframes, a.cuts)
             for i, (p, a, m) in enumerate(zip(probes, analyses, normalise([a.motion for a in analyses])))]
    edl = plan(beat_map, infos, config)
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    thumbnail = os.path.join(folder, "thumbnail.jpg")
    result = render(
        edl, probes, song, out_path, thumbnail_path=thumbnail, should_stop=should_stop, preset=preset,
        progress=lambda pct, step: report(25.0 + 0.75 * pct, step),
    )
    edl_path = os.path.join(folder, "edl.json")
    bm_path = os.path.join(folder, "beat_map.json")
    with open(edl_path, "w") as fh:
        fh.write(edl.to_json())
    with open(bm_path, "w") as fh:
        fh.write(beat_map.to_json())
    otio_path = write_otio(edl, beat_map, clip_urls or [p.path for p in probes], song_url or song,
                           os.path.join(folder, "edit.otio"))
    report(100.0, "done")
    return MakeResult(video=out_path, thumbnail=thumbnail, edl_path=edl_path, otio_path=otio_path,
                      beat_map_path=bm_path, edl=edl,
                      beat_map=beat_map, file_size=result.file_size, duration=result.duration,
                      decoded_frames=result.decoded_frames)
