"""Plan the edit: which beats become cuts, which clip range fills each shot.

1. Song window: the whole song, or for a preview the most energetic window of the requested
   length (start on a downbeat, scored by section energy), e.g. the chorus or drop.
2. Cut candidates by sync mode (every beat, every other, strong beats, downbeats). With
   ``section_aware``, calm sections (energy < 0.5) keep only downbeats, and choruses and drops
   cut on every beat.
3. A minimum shot length: a candidate closer than ``min_shot_duration`` to the previous cut
   is skipped (no flicker). Cut frames are ``round((t - window_start) * fps)``.
4. Clips spread fairly: each shot takes a clip used at most once more than the least-used one
   (among those, the best motion match), at a source range not used before (ranges are only reused once every clip is used up); the range is
   chosen by its motion score to match the section's energy (high-motion footage in choruses).
   A clip is never stretched: a shot longer than every clip is split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..contracts import BeatMap, ClipRef, EditConfig, EditDecisionList, Shot, SongWindow, Transition
from ..errors import InvalidRequest

#: seconds per motion score
MOTION_STEP = 0.5
CALM_ENERGY = 0.5
#: a clip may be used this many times more than the least-used one, to match motion to energy
FAIR_SLACK = 1
LIVELY = ("chorus", "drop")


@dataclass(frozen=True)
class ClipInfo:
    index: int
    name: str
    duration: float
    #: motion score 0..1 for each MOTION_STEP seconds of the clip
    motion: tuple[float, ...] = ()
    #: keyframe times (s): a shot that starts on one needs no decoding before its first frame
    keyframes: tuple[float, ...] = ()


@dataclass
class _Usage:
    used: list[tuple[float, float]] = field(default_factory=list)
    count: int = 0


def _window(beat_map: BeatMap, config: EditConfig) -> tuple[float, float]:
    duration = beat_map.duration
    if not config.preview_only or config.preview_duration >= duration:
        return 0.0, duration
    length = config.preview_duration
    starts = [b.time for b in beat_map.downbeats] or [b.time for b in beat_map.beats] or [0.0]
    starts = [s for s in starts if s + length <= duration] or [max(0.0, duration - length)]

    def energy(start: float) -> float:
        total = 0.0
        for s in beat_map.sections:
            overlap = min(s.end_time, start + length) - max(s.start_time, start)
            if overlap > 0:
                total += overlap * s.energy
        return total

    best = max(starts, key=lambda s: (round(energy(s), 6), -s))
    return best, best + length


def _candidates(beat_map: BeatMap, config: EditConfig, start: float, end: float) -> list[float]:
    out = []
    for i, b in enumerate(beat_map.beats):
        if not (start < b.time < end):
            continue
        section = beat_map.section_at(b.time)
        mode = config.sync_mode
        if mode == "every_beat":
            keep = True
        elif mode == "every_other":
            keep = i % 2 == 0
        elif mode == "strong_beats":
            keep = b.strength >= config.strength_threshold
        else:
            keep = b.is_downbeat
        if config.section_aware and section is not None:
            if section.name in LIVELY:
                keep = True
            elif section.energy < CALM_ENERGY and section.name not in LIVELY:
                keep = keep and b.is_downbeat
        if keep:
            out.append(b.time)
    return out


def _overlaps(a: float, b: float, used: list[tuple[float, float]]) -> bool:
    return any(a < u1 and u0 < b for u0, u1 in used)


#: a keyframe in-point is preferred when its motion fit is this close to the best one
KEYFRAME_SLACK = 0.05


def _pick_range(clip: ClipInfo, usage: _Usage, need: float, target_motion: float) -> tuple[float, float] | None:
    """The best unused in-point in ``clip`` for ``need`` seconds, with its motion score: the
    motion closest to ``target_motion``, preferring keyframes (cheaper to start decoding at)."""
    if clip.duration + 1e-6 < need:
        return None
    step = MOTION_STEP
    latest = max(0.0, clip.duration - need)
    n = max(1, int(math.floor(latest / step)) + 1)
    keys = {round(k, 4) for k in clip.keyframes if 0 <= k <= latest}
    options = []
    for t in sorted({min(k * step, latest) for k in range(n)} | keys):
        if _overlaps(t, t + need, usage.used):
            continue
        lo, hi = int(t / step), max(int(t / step) + 1, int(math.ceil((t + need) / step)))
        scores = clip.motion[lo:hi]
        motion = sum(scores) / len(scores) if scores else 0.5
        options.append((abs(motion - target_motion), round(t, 4) not in keys, t, motion))
    if not options:
        return None
    best_fit = min(o[0] for o in options)
    fit, _, t, motion = min((o for o in options if o[0] <= best_fit + KEYFRAME_SLACK), key=lambda o: (o[1], o[0], o[2]))
    return t, motion


def plan(beat_map: BeatMap, clips: list[ClipInfo], config: EditConfig) -> EditDecisionList:
    if not clips:
        raise InvalidRequest("at least one clip is needed", code="no_clips")
    usable = [c for c in clips if c.duration > 0]
    if not usable:
        raise InvalidRequest("every clip is empty", code="no_clips")
    fps = config.output_fps
    width, height = config.size
    start, end = _window(beat_map, config)
    total_frames = max(1, int(round((end - start) * fps)))
    min_frames = max(1, int(round(config.min_shot_duration * fps)))

    cuts = [0]
    for t in _candidates(beat_map, config, start, end):
        f = int(round((t - start) * fps))
        if f - cuts[-1] >= min_frames and total_frames - f >= min_frames:
            cuts.append(f)
    bounds = list(zip(cuts, cuts[1:] + [total_frames]))

    # a shot longer than the longest clip is split (clips are never stretched)
    longest = max(c.duration for c in usable)
    trans = config.transition_duration if config.transition_style != "cut" else 0.0
    split: list[tuple[int, int]] = []
    for a, b in bounds:
        pieces = max(1, math.ceil(((b - a) / fps + trans) / max(longest, 1e-3) - 1e-9))
        edges = [a + round((b - a) * k / pieces) for k in range(pieces + 1)]
        split.extend(zip(edges[:-1], edges[1:]))

    usage = {c.index: _Usage() for c in usable}
    shots: list[Shot] = []
    for i, (a, b) in enumerate(split):
        t_song = start + a / fps
        section = beat_map.section_at(t_song)
        energy = section.energy if section is not None else 0.5
        # the outgoing shot keeps playing under the next transition: reserve that too
        need = (b - a) / fps + (trans if i + 1 < len(split) else 0.0)
        choice = None
        for attempt in range(2):
            fits = [(clip, picked) for clip in usable
                    if (picked := _pick_range(clip, usage[clip.index], need, energy)) is not None]
            if fits:
                floor = min(usage[c.index].count for c, _ in fits)
                slack = FAIR_SLACK if floor > 0 else 0  # every clip is shown once before any repeats
                # fairness first (at most `slack` uses ahead of the least-used clip that fits), then
                # the motion that fits the section's energy, then the least-used clip
                options = [((usage[c.index].count - floor > slack, abs(p[1] - energy), usage[c.index].count, c.index),
                            (c, *p)) for c, p in fits]
                choice = min(options, key=lambda o: o[0])[1]
                break
            for u in usage.values():  # every range has been used: start a new round
                u.used.clear()
        if choice is None:  # only when need > longest clip, which the split prevents
            clip = max(usable, key=lambda c: c.duration)
            choice = (clip, 0.0, 0.5)
        clip, t_in, motion = choice
        usage[clip.index].used.append((t_in, t_in + need))
        usage[clip.index].count += 1
        transition = Transition(style="cut", duration=0.0)
        if i > 0 and trans > 0:
            # bounded by the transition duration and by half of the shorter neighbouring shot
            limit = min(trans, (b - a) / fps / 2, (split[i - 1][1] - split[i - 1][0]) / fps / 2)
            transition = Transition(style=config.transition_style, duration=math.floor(limit * 1e4) / 1e4)
        shots.append(
            Shot(index=i, clip=clip.index, source_in=round(t_in, 4), start_frame=a, end_frame=b,
                 transition=transition, section=section.name if section else "verse",
                 motion=round(min(1.0, max(0.0, motion)), 4))
        )
    return EditDecisionList(
        fps=fps, width=width, height=height, fit=config.fit, output_format=config.output_format,
        song=SongWindow(start=round(start, 4), end=round(end, 4), audio_hash=beat_map.audio_hash),
        total_frames=total_frames,
        clips=[ClipRef(index=c.index, name=c.name, duration=round(c.duration, 4)) for c in clips],
        shots=shots,
    )
