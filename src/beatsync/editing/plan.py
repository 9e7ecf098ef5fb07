"""Plan the edit: which beats become cuts, which clip range fills each shot.

1. Song window: the whole song, or for a preview the most energetic window of the requested
   length (start on a downbeat, scored by section energy), e.g. the chorus or drop. A preview
   at least as long as the song is the whole song (warning ``preview_longer_than_song``).
2. Cut candidates are the beats of the sync mode (every beat, every other, strong beats,
   downbeats): every cut is one of them. Only ``section_aware`` (off unless asked) changes
   that: calm sections (energy < 0.5) keep only downbeats, choruses and drops cut every beat.
   Where the beat map's confidence (the song's or the section's) is below ``LOW_CONFIDENCE`` (0.5),
   only downbeats stay candidates (warning ``low_beat_confidence``).
3. A minimum shot length: a candidate closer than ``min_shot_duration`` to the previous cut
   is skipped (no flicker; warning ``beats_skipped``). Cut frames are ``round((t - window_start) * fps)``.
4. Source shots: each clip's own cuts (``ClipInfo.cuts``, found by ``render/shots.py``) split it
   into source shots; a range shown in one output shot stays inside one source shot, or crosses a
   source cut only where that cut lands on a beat of the song.
   Sparse footage (``ClipInfo.holds``: few real pictures, each held) starts each range on a new
   picture, and shows a new picture inside a shot only on a beat (else, only where nothing else
   fits, as a flaw: warning ``picture_change_off_beat``).
   One clip twice in a row only where its take continues (in-point = previous out-point: the shot
   is marked ``continues``, no cut, no transition; warning ``take_continued``) or where the cut
   reads as one (the pictures either side differ by JUMP_MIN, ``ClipInfo.looks``); a jump cut
   only where nothing else fits (warning ``jump_cut``).
   A song without beats (silent, or no pulse) is cut on a steady NOMINAL_BPM grid (warning ``no_beats``).
5. Clips share the screen fairly by time: each clip's target (:func:`fair_shares`) is an equal
   share of the output, capped at what its footage can fill in whole shots (water-filling; warnings
   ``clip_under_share`` / ``clip_unused``); each shot goes to the clip furthest behind its target at
   that point of the song (among those within ``FAIR_SLACK_S`` of it, the best motion match for the
   section's energy). A source range is not shown twice while the footage suffices; with less
   footage than song, targets follow each clip's footage and a clip behind its target starts its
   next round (warning ``footage_reused``). Stated bound: every clip within 2 x the longest shot
   + 0.5 s of its target.
   A clip is never stretched: a shot longer than every source shot is split, on a beat where
   one falls inside it (warning ``shot_split``).
6. With ``punch``, strong downbeats inside long shots get a short zoom accent.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from ..contracts import Beat, BeatMap, ClipRef, EditConfig, EditDecisionList, EditWarning, Shot, SongWindow, Transition
from ..contracts.beat_map import LOW_CONFIDENCE
from ..errors import InvalidRequest

#: seconds per motion score
MOTION_STEP = 0.5
#: seconds per look (a small grey thumbnail: whether two moments of a clip look alike)
LOOK_STEP = 0.1
CALM_ENERGY = 0.5
#: a clip within this many seconds of the clip furthest behind its screen-time target may be
#: chosen instead, for a better motion match (the fairness bound grows by this much)
FAIR_SLACK_S = 0.5
LIVELY = ("chorus", "drop")
#: punch accents: only in shots at least this long, at least PUNCH_MARGIN from the shot's ends
PUNCH_MIN_SHOT = 1.5
PUNCH_MARGIN = 0.5
PUNCH_STRENGTH = 0.5
#: a source cut counts as on a beat within this many output frames
ON_BEAT_FRAMES = 1
#: two moments of a clip read as a cut (not a jump) when their pictures differ by at least this
#: much: mean grey level at 16x9 of the source. A cut reads as one at 8 levels in the output (the
#: level that makes a frame difference a cut); the output, cropped, scaled and re-encoded, showed
#: differences up to 15 % lower than the source's on the shared footage: 10 keeps a margin
JUMP_MIN = 10.0
#: a shot's in-point continues the previous shot's take when it is this close to its out-point
CONTINUE_TOL = 1e-3


@dataclass(frozen=True)
class ClipInfo:
    index: int
    name: str
    duration: float
    #: motion score 0..1 for each MOTION_STEP seconds of the clip
    motion: tuple[float, ...] = ()
    #: keyframe times (s): a shot that starts on one needs no decoding before its first frame
    keyframes: tuple[float, ...] = ()
    #: the clip's own shot boundaries (s): the time of the first frame of each new source shot
    cuts: tuple[float, ...] = ()
    #: sparse footage only (a clip whose real pictures change far less often than its frames):
    #: ``(start, end)`` of each held picture, from its first settled frame to the next change
    holds: tuple[tuple[float, float], ...] = ()
    #: per LOOK_STEP seconds, the first frame at 16x9 grey (bytes): whether two moments look alike
    looks: tuple[bytes, ...] = ()

    @property
    def shots(self) -> list[tuple[float, float]]:
        """Source shots: ``[(start, end), ...]`` between the clip's own cuts."""
        edges = [0.0] + [c for c in sorted(self.cuts) if 0.0 < c < self.duration] + [self.duration]
        return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]

    @property
    def segments(self) -> list[tuple[float, float]]:
        """Stretches a range can show with no cut and no picture change: the source shots, or for
        sparse footage each held picture (inside one source shot)."""
        if not self.holds:
            return self.shots
        out = []
        for a, b in self.shots:
            out += [(max(a, h0), min(b, h1)) for h0, h1 in self.holds if min(b, h1) > max(a, h0)]
        return out

    @property
    def changes(self) -> list[float]:
        """Where the picture changes inside the clip: its own cuts, and a sparse clip's new pictures."""
        return sorted({c for c in self.cuts if 0.0 < c < self.duration}
                      | {h1 for _, h1 in self.holds if 0.0 < h1 < self.duration})

    def shot_at(self, t: float) -> int:
        """Index of the source shot showing clip time ``t``."""
        return bisect.bisect_right(sorted(c for c in self.cuts if 0.0 < c < self.duration), t + 1e-4)

    def alike(self, t0: float, t1: float) -> bool:
        """Whether a cut from clip time ``t0`` to ``t1`` would read as a jump, not a cut: the pictures
        around them (the looks of the LOOK_STEP bins either side of each) differ somewhere by less
        than JUMP_MIN grey levels (16x9, mean). Without looks (a clip not analysed), moments of one
        source shot are alike and moments of two are not."""
        if not self.looks:
            return self.shot_at(t0) == self.shot_at(t1)
        near = [[self.looks[k] for k in (int(t / LOOK_STEP), int(t / LOOK_STEP) + 1)
                 if 0 <= k < len(self.looks) and self.looks[k]] for t in (t0, t1)]
        if not near[0] or not near[1]:
            return True
        return min(sum(abs(x - y) for x, y in zip(a, b)) / len(a) for a in near[0] for b in near[1]) < JUMP_MIN


@dataclass
class _Usage:
    used: list[tuple[float, float]] = field(default_factory=list)
    count: int = 0
    seconds: float = 0.0


class _Warnings:
    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}

    def add(self, code: str, message: str) -> None:
        self.items.setdefault(code, []).append(message)

    def out(self) -> list[EditWarning]:
        result = []
        for code, messages in self.items.items():
            for m in messages[:5]:
                result.append(EditWarning(code=code, message=m))
            if len(messages) > 5:
                result.append(EditWarning(code=code, message=f"... and {len(messages) - 5} more"))
        return result


def _window(beat_map: BeatMap, config: EditConfig, warn: _Warnings) -> tuple[float, float]:
    duration = beat_map.duration
    if not config.preview_only:
        return 0.0, duration
    if config.preview_duration >= duration:
        warn.add("preview_longer_than_song", f"preview of {config.preview_duration:g} s asked, the song is "
                                              f"{duration:.1f} s long: the whole song is used")
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


def mode_beats(beat_map: BeatMap, config: EditConfig) -> list[float]:
    """Times of the beats the sync mode cuts on (without section_aware)."""
    out = []
    for i, b in enumerate(beat_map.beats):
        mode = config.sync_mode
        if mode == "every_beat":
            keep = True
        elif mode == "every_other":
            keep = i % 2 == 0
        elif mode == "strong_beats":
            keep = b.strength >= config.strength_threshold
        else:
            keep = b.is_downbeat
        if keep:
            out.append(b.time)
    return out


def _candidates(beat_map: BeatMap, config: EditConfig, start: float, end: float) -> list[float]:
    if not config.section_aware:
        return [t for t in mode_beats(beat_map, config) if start < t < end]
    chosen = set(mode_beats(beat_map, config))
    out = []
    for b in beat_map.beats:
        if not (start < b.time < end):
            continue
        keep = b.time in chosen
        section = beat_map.section_at(b.time)
        if section is not None:
            if section.name in LIVELY:
                keep = True
            elif section.energy < CALM_ENERGY:
                keep = keep and b.is_downbeat
        if keep:
            out.append(b.time)
    return out


def _trusted(beat_map: BeatMap, candidates: list[float], start: float, end: float,
             warn: _Warnings) -> list[float]:
    """Where the beat grid is not trusted (its confidence below ``LOW_CONFIDENCE``), only the downbeats
    stay cut candidates: fewer cuts where a cut may land off the beat (warning ``low_beat_confidence``)."""
    unsure = [b for b in beat_map.beats
              if start < b.time < end and beat_map.confidence_at(b.time) < LOW_CONFIDENCE]
    if not unsure:
        return candidates
    drop = {b.time for b in unsure if not b.is_downbeat}
    kept = [t for t in candidates if t not in drop]
    lowest = min(beat_map.confidence_at(b.time) for b in unsure)
    dropped = len(candidates) - len(kept)
    warn.add("low_beat_confidence",
             f"the beat grid is unsure from {unsure[0].time:.1f} s to {unsure[-1].time:.1f} s (confidence "
             f"{lowest:.2f}, below {LOW_CONFIDENCE:g}): cuts there on downbeats only, {dropped} beats uncut")
    return kept


def _overlaps(a: float, b: float, used: list[tuple[float, float]]) -> bool:
    """Whether ``[a, b)`` overlaps a range of ``used`` (sorted, non-overlapping)."""
    k = bisect.bisect_left(used, (b,))
    return k > 0 and used[k - 1][1] > a


def _free(segment: tuple[float, float], used: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of ``segment`` not in ``used`` (sorted)."""
    a, b = segment
    out = []
    for u0, u1 in used[max(0, bisect.bisect_left(used, (a,)) - 1):]:
        if u0 >= b:
            break
        if u1 <= a:
            continue
        if u0 > a:
            out.append((a, u0))
        a = max(a, u1)
    if b > a:
        out.append((a, b))
    return out


#: a keyframe in-point is preferred when its motion fit is this close to the best one
KEYFRAME_SLACK = 0.05
#: in-points tried per free stretch of footage (its ends and evenly between)
POINTS_PER_STRETCH = 8


def _pick_range(clip: ClipInfo, usage: _Usage, need: float, target_motion: float,
                beat_offsets: tuple[float, ...] = (), fps: int = 30, pack: bool = False,
                after: float | None = None, may_continue: bool = True) -> tuple[float, float, int, bool] | None:
    """The best unused in-point in ``clip`` for ``need`` seconds: ``(t, motion, flaws, continues)``.

    The range stays inside one source shot; failing that, it may cross source cuts that land on a
    beat of the song (``beat_offsets``: seconds from the shot's start). Sparse footage
    (``clip.holds``) starts on the first frame of a held picture, and its picture changes inside the
    range count as cuts do, except that one off the beat is offered as a flaw rather than refused.
    ``after``: the previous shot's out-point when that shot showed this clip: an in-point there
    continues the take (``continues``); any other in-point whose picture looks like the out-point's
    (:meth:`ClipInfo.alike`) is a jump cut, a flaw (``may_continue`` false: the take is
    not continued, a clip ahead of its screen time). ``flaws`` counts jump cuts and
    picture changes off the beat. Among the options: fewest flaws, then a cut before a continued
    take, then the motion closest to ``target_motion``, preferring in-points that leave no sliver
    too short for a shot, then keyframes (cheaper to start decoding at). With ``pack`` (a clip
    whose footage is scarce), only in-points at the ends of free stretches are taken where any
    fits, so the footage is used up in whole shots."""
    if clip.duration + 1e-6 < need:
        return None
    step = MOTION_STEP
    latest = max(0.0, clip.duration - need)
    keys = sorted(round(k, 4) for k in clip.keyframes if 0 <= k <= latest)
    starts: dict[float, tuple[float, float]] = {}  # in-point -> the free stretch it lies in
    if clip.holds:  # sparse footage: an in-point on a new picture
        starts.update({h0: (h0, h0 + need) for h0, _ in clip.holds if h0 <= latest + 1e-6})
    else:
        for seg in clip.segments:
            for a, b in _free(seg, usage.used):
                room = b - a - need
                if room < -1e-6:
                    continue
                points = {math.ceil(a * 1e4) / 1e4, math.floor((b - need) * 1e4) / 1e4}
                n = min(POINTS_PER_STRETCH, int(room / step))
                points |= {a + room * k / (n + 1) for k in range(1, n + 1)}
                points |= set(keys[bisect.bisect_left(keys, a - 1e-6):bisect.bisect_right(keys, b - need + 1e-6)])
                starts.update({p: (a, b) for p in points})
        if clip.cuts and beat_offsets:  # a source cut put on a beat of the song
            for c in clip.cuts:
                starts.update({c - o: (c - o, c - o + need) for o in beat_offsets if 0 <= c - o <= latest})
    if after is not None and may_continue and after <= latest + 1e-6:
        starts[after] = (after, after + need)
    tol = (ON_BEAT_FRAMES + 0.5) / fps
    keyset = set(keys)
    cuts = [c for c in clip.cuts if 0.0 < c < clip.duration]
    changes = clip.changes
    options = []
    for t0, (a, b) in sorted(starts.items()):
        t = min(max(0.0, round(t0, 4)), math.floor(latest * 1e4) / 1e4)
        if _overlaps(t, t + need, usage.used):
            continue
        crossed = changes[bisect.bisect_right(changes, t + 1e-4):bisect.bisect_left(changes, t + need - 1e-4)]
        off = [c for c in crossed if not any(abs((c - t) - o) <= tol for o in beat_offsets)]
        if any(abs(c - x) <= 1e-6 for c in off for x in cuts):
            continue  # a source cut off the beat: never
        continues = after is not None and may_continue and abs(t - after) <= CONTINUE_TOL and not any(abs(c - after) <= CONTINUE_TOL
                                                                                      for c in cuts)
        jump = after is not None and not continues and clip.alike(after - 1e-3, t)
        # footage left on either side of the range too short for a shot like this one is lost
        slivers = sum(1e-3 < x < need for x in (t - a, b - t - need))
        if pack:
            slivers = 0 if min(t - a, b - t - need) <= 1e-3 else 3
        lo, hi = int(t / step), max(int(t / step) + 1, int(math.ceil((t + need) / step)))
        scores = clip.motion[lo:hi]
        motion = sum(scores) / len(scores) if scores else 0.5
        options.append((len(off) + jump, continues, bool(crossed), slivers, abs(motion - target_motion),
                        t not in keyset, t, motion))
    if not options:
        return None
    best = min(o[:4] for o in options)
    options = [o for o in options if o[:4] == best]
    best_fit = min(o[4] for o in options)
    chosen = min((o for o in options if o[4] <= best_fit + KEYFRAME_SLACK), key=lambda o: (o[5], o[4], o[6]))
    return chosen[6], chosen[7], chosen[0], chosen[1]


def fillable(clips: list[ClipInfo], shot: float, shortest: float, trans: float) -> dict[int, float]:
    """Seconds of output each clip's footage can fill without showing a range twice: per source
    shot, as many average shots (``shot`` long, each also holding ``trans`` of footage for the next
    transition) as fit, or one shortest shot where none does."""
    out = {}
    for c in clips:
        total = 0.0
        for a, b in c.segments:
            n = math.floor((b - a + 1e-6) / (shot + trans))
            total += n * shot if n else (shortest if b - a + 1e-6 >= shortest else 0.0)
        out[c.index] = total
    return out


def fair_shares(clips: list[ClipInfo], edl: EditDecisionList) -> dict[int, float]:
    """The screen time each clip of ``edl`` is due (what the planner aims at): equal shares of the
    output, capped at what each clip can fill (see :func:`fillable`)."""
    trans = max((s.transition.duration for s in edl.shots), default=0.0)
    total = edl.total_frames / edl.fps
    cap = fillable(clips, total / len(edl.shots), min(s.frames for s in edl.shots) / edl.fps, trans)
    out = _targets({i: c for i, c in cap.items() if c > 0}, total)
    return {c.index: out.get(c.index, 0.0) for c in clips}


def _targets(capacity: dict[int, float], total: float) -> dict[int, float]:
    """Equal shares of ``total`` seconds, each capped at its clip's capacity (water-filling). With
    less footage than output, shares in proportion to the footage (each shown as often)."""
    footage = sum(capacity.values())
    if footage <= total:
        return {i: c * total / footage for i, c in capacity.items()} if footage > 0 else {}
    left, open_ = total, dict(capacity)
    out: dict[int, float] = {}
    while open_:
        share = left / len(open_)
        capped = {i: c for i, c in open_.items() if c < share}
        if not capped:
            out.update({i: share for i in open_})
            break
        for i, c in capped.items():
            out[i] = c
            left -= c
            del open_[i]
    return out


def _split_points(a: int, b: int, pieces: int, beats: list[int], min_frames: int) -> list[int]:
    """``pieces - 1`` frames splitting ``[a, b)``: the beat frame nearest each even split where one
    lies inside (keeping ``min_frames`` apart), else the even split itself."""
    out = [a]
    for k in range(1, pieces):
        ideal = a + round((b - a) * k / pieces)
        near = [f for f in beats if out[-1] + min_frames <= f <= b - min_frames and abs(f - ideal) <= (b - a) / pieces / 2]
        out.append(min(near, key=lambda f: abs(f - ideal)) if near else max(out[-1] + 1, ideal))
    return out + [b]


#: a song with no beat (silent, or noise without a pulse) is cut on a steady grid at this tempo, 4/4
NOMINAL_BPM = 120.0


def _steady_grid(beat_map: BeatMap, config: EditConfig, warn: _Warnings) -> BeatMap:
    """``beat_map`` with beats on a steady NOMINAL_BPM 4/4 grid from 0 s (strength 1 on downbeats,
    0.6 on third beats, 0.3 on the others), for a song in which no beat was found."""
    period = 60.0 / NOMINAL_BPM
    n = int(beat_map.duration / period) + 1
    beats = [Beat(index=i, time=round(i * period, 4), frame=int(round(i * period * beat_map.fps)),
                  strength=1.0 if i % 4 == 0 else (0.6 if i % 4 == 2 else 0.3), is_downbeat=i % 4 == 0,
                  bar=i // 4, beat_in_bar=i % 4 + 1) for i in range(n) if i * period < beat_map.duration]
    # the grid is what it says it is: confident by construction (the low-confidence fallback is for beats
    # a tracker found; here ``no_beats`` says what happened)
    grid = beat_map.model_copy(update={"beats": beats, "confidence": 1.0, "sections": [
        s.model_copy(update={"confidence": 1.0}) for s in beat_map.sections]})
    kept = mode_beats(grid, config)
    every = (kept[1] - kept[0]) if len(kept) > 1 else beat_map.duration
    warn.add("no_beats", f"no beat found in the song (silent, or no steady pulse): cut on a steady "
                         f"{NOMINAL_BPM:g} BPM grid instead, {config.sync_mode} every {every:g} s")
    return grid


def plan(beat_map: BeatMap, clips: list[ClipInfo], config: EditConfig) -> EditDecisionList:
    if not clips:
        raise InvalidRequest("at least one clip is needed", code="no_clips")
    usable = [c for c in clips if c.duration > 0]
    if not usable:
        raise InvalidRequest("every clip is empty", code="no_clips")
    warn = _Warnings()
    fps = config.output_fps
    width, height = config.size
    if f"{width}x{height}" != config.output_resolution:
        warn.add("resolution_rounded", f"output_resolution {config.output_resolution} rendered as {width}x{height}: "
                                       "each side is a multiple of 4 (whole 4:2:0 chroma planes)")
    if not beat_map.beats:
        beat_map = _steady_grid(beat_map, config, warn)
    start, end = _window(beat_map, config, warn)
    total_frames = max(1, int(round((end - start) * fps)))
    min_frames = max(1, int(round(config.min_shot_duration * fps)))
    beat_frames = sorted({int(round((b.time - start) * fps)) for b in beat_map.beats if start < b.time < end})

    cuts = [0]
    skipped = 0
    candidates = _trusted(beat_map, _candidates(beat_map, config, start, end), start, end, warn)
    for t in candidates:
        f = int(round((t - start) * fps))
        if f - cuts[-1] >= min_frames and total_frames - f >= min_frames:
            cuts.append(f)
        else:
            skipped += 1
    if skipped:
        warn.add("beats_skipped", f"{skipped} of {len(candidates)} {config.sync_mode} beats not cut: closer than "
                                  f"min_shot_duration {config.min_shot_duration:g} s to the previous cut")
    bounds = list(zip(cuts, cuts[1:] + [total_frames]))

    trans = config.transition_duration if config.transition_style != "cut" else 0.0
    if config.transition_style != "cut" and trans <= 0:
        warn.add("transition_is_cut", f"transition_style {config.transition_style} with transition_duration 0: "
                                      "hard cuts")
    # a shot longer than the longest source shot is split (clips are never stretched)
    longest = max(b - a for c in usable for a, b in c.shots)  # a sparse clip's pictures do not split shots
    split: list[tuple[int, int]] = []
    n_split = 0
    for a, b in bounds:
        pieces = max(1, math.ceil(((b - a) / fps + trans) / max(longest, 1e-3) - 1e-9))
        if pieces > 1:
            n_split += 1
        edges = _split_points(a, b, pieces, beat_frames, min(min_frames, max(1, (b - a) // (2 * pieces))))
        split.extend(zip(edges[:-1], edges[1:]))
    if n_split:
        warn.add("shot_split", f"{n_split} shots longer than the longest source shot ({longest:.2f} s) were split "
                               "(on a beat where one falls inside)")

    # fair screen time: equal shares capped at what each clip's footage can fill
    total_s = total_frames / fps
    shortest_need = min((b - a) / fps for a, b in split)
    capacity = fillable(usable, total_s / len(split), shortest_need, trans)
    for c in usable:
        if capacity[c.index] <= 0 and c.holds:
            hold = sorted(h1 - h0 for h0, h1 in c.holds)[len(c.holds) // 2]
            warn.add("clip_unused", f"clip {c.name} ({c.duration:.2f} s) shows a new picture only every {hold:.2f} s "
                                    f"(few real pictures): every shot of this edit (the shortest is {shortest_need:.2f} s) "
                                    "would show a new picture off the beat, so it is not used. Faster cuts "
                                    "(every_beat, a faster song) or footage with more pictures use it")
        elif capacity[c.index] <= 0:
            warn.add("clip_unused", f"clip {c.name} ({c.duration:.2f} s) is too short for any shot "
                                    f"(the shortest is {shortest_need:.2f} s): not used")
    target = _targets({i: cap for i, cap in capacity.items() if cap > 0}, total_s)
    share = max(target.values()) if target else 0.0
    for c in usable:
        if 0 < capacity[c.index] < share - 1e-6 and sum(capacity.values()) > total_s:
            warn.add("clip_under_share", f"clip {c.name} ({c.duration:.1f} s) can fill only {capacity[c.index]:.1f} s "
                                         f"of this {total_s:.1f} s edit without repeating itself: it is shown "
                                         f"{capacity[c.index]:.1f} s and the clips with more footage fill the rest. "
                                         "For an even mix, give more footage of it, use fewer clips, or make a "
                                         "shorter edit (a preview)")
    candidates_clips = [c for c in usable if c.index in target]
    reuse = sum(capacity.values()) <= total_s

    usage = {c.index: _Usage() for c in usable}
    shots: list[Shot] = []
    rounds = 0
    crossed_off_beat = 0
    continued = 0
    jumps: dict[str, int] = {}
    off_beat_pictures: dict[str, int] = {}
    prev: tuple[ClipInfo, float, float, float] | None = None  # clip, in-point, shown and reserved out-points
    for i, (a, b) in enumerate(split):
        t_song = start + a / fps
        section = beat_map.section_at(t_song)
        energy = section.energy if section is not None else 0.5
        # the outgoing shot keeps playing under the next transition: reserve that too
        need = (b - a) / fps + (trans if i + 1 < len(split) else 0.0)
        lo_b = bisect.bisect_right(beat_frames, a)
        hi_b = bisect.bisect_left(beat_frames, a + int(round(need * fps)))
        offsets = tuple((f - a) / fps for f in beat_frames[lo_b:hi_b])
        progress = (a + (b - a) / 2) / total_frames
        # the previous shot may continue into this one: its footage under a transition is not needed then
        if prev is not None and prev[3] > prev[2]:
            used = usage[prev[0].index].used
            if (prev[1], prev[3]) in used:
                used[used.index((prev[1], prev[3]))] = (prev[1], prev[2])
        choice = None
        kept: tuple[list, dict, int] | None = None  # flawed options, the usage they were found with, rounds
        for attempt in range(2):
            fits = []
            for clip in candidates_clips:
                u, pack = usage[clip.index], target[clip.index] < share - 1e-6
                after = prev[2] if prev is not None and prev[0].index == clip.index else None
                # a clip ahead of its screen time does not continue its take (a cut to another one does)
                ahead = target[clip.index] * progress - u.seconds < -FAIR_SLACK_S
                picked = _pick_range(clip, u, need, energy, offsets, fps, pack, after, not ahead)
                if picked is None and reuse and u.used and target[clip.index] * progress > u.seconds:
                    u.used.clear()  # less footage than song: a clip behind its share starts its next round
                    rounds += 1
                    picked = _pick_range(clip, u, need, energy, offsets, fps, pack, after, not ahead)
                if picked is not None:
                    fits.append((clip, picked))
            if fits and attempt == 0 and all(p[2] for _, p in fits):
                # only flawed options: a new round of the footage may offer a clean one (else these)
                kept = (fits, {i: list(u.used) for i, u in usage.items()}, rounds)
                fits = []
            elif not any(p[2] == 0 for _, p in fits) and kept is not None:
                fits = kept[0]
                for i, used in kept[1].items():
                    usage[i].used[:] = used
                rounds = kept[2]
            if fits:
                # the fewest flaws (jump cuts, picture changes off the beat) first; among those,
                # fairness, then a cut before the take continued, then the motion match
                tier = min(p[2] for _, p in fits)
                fits = [(c, p) for c, p in fits if p[2] == tier]
                # behind = seconds a clip is behind its target at this point of the song
                behind = {c.index: target[c.index] * progress - usage[c.index].seconds for c, _ in fits}
                most = max(behind.values())
                unseen = any(usage[c.index].count == 0 for c, _ in fits)  # every clip is shown once first
                options = [((unseen and usage[c.index].count > 0, behind[c.index] < most - FAIR_SLACK_S, p[3],
                             abs(p[1] - energy), -behind[c.index], c.index),
                            (c, *p)) for c, p in fits]
                choice = min(options, key=lambda o: o[0])[1]
                break
            rounds += 1
            for u in usage.values():  # every range has been used: start a new round
                u.used.clear()
        if choice is None:  # a shot longer than every source shot, with no beat to hide the source cut on
            clip = max(candidates_clips or usable, key=lambda c: c.duration)
            crossed_off_beat += 1
            choice = (clip, 0.0, 0.5, 0, False)
        clip, t_in, motion, flaws, continues = choice
        if prev is not None and prev[3] > prev[2] and not (continues and prev[0].index == clip.index):
            used = usage[prev[0].index].used  # a cut: the previous shot plays on under the transition
            if (prev[1], prev[2]) in used:
                used.remove((prev[1], prev[2]))
                bisect.insort(used, (prev[1], prev[3]))
        if continues:
            continued += 1
        elif flaws:
            if prev is not None and prev[0].index == clip.index and clip.alike(prev[2] - 1e-3, t_in):
                jumps[clip.name] = jumps.get(clip.name, 0) + 1
            if clip.holds:
                off_beat_pictures[clip.name] = off_beat_pictures.get(clip.name, 0) + 1
        prev = (clip, t_in, t_in + (b - a) / fps, t_in + need)
        bisect.insort(usage[clip.index].used, (t_in, t_in + need))
        usage[clip.index].count += 1
        usage[clip.index].seconds += (b - a) / fps
        transition = Transition(style="cut", duration=0.0)
        if i > 0 and trans > 0 and not continues:
            # bounded by the transition duration and by half of the shorter neighbouring shot
            limit = min(trans, (b - a) / fps / 2, (split[i - 1][1] - split[i - 1][0]) / fps / 2)
            d = math.floor(limit * 1e4) / 1e4
            if int(round(d * fps)) < 1:
                transition = Transition(style="cut", duration=0.0)
                warn.add("transition_shortened", f"shot {i}: too short for a {config.transition_style} "
                                                 f"of {trans:g} s: a hard cut")
            else:
                transition = Transition(style=config.transition_style, duration=d)
                if d < trans - 1e-3:
                    warn.add("transition_shortened", f"shot {i}: {config.transition_style} shortened from "
                                                     f"{trans:g} s to {d:g} s (half of a neighbouring shot)")
        accents: list[int] = []
        if config.punch and (b - a) / fps >= PUNCH_MIN_SHOT:
            margin = int(round(PUNCH_MARGIN * fps))
            accents = sorted({int(round((bt.time - start) * fps)) for bt in beat_map.beats
                              if bt.is_downbeat and bt.strength >= PUNCH_STRENGTH
                              and a + margin <= int(round((bt.time - start) * fps)) < b - margin})
        shots.append(
            Shot(index=i, clip=clip.index, source_in=round(t_in, 4), start_frame=a, end_frame=b,
                 transition=transition, section=section.name if section else "verse",
                 motion=round(min(1.0, max(0.0, motion)), 4), accents=accents, continues=continues)
        )
    if rounds:
        warn.add("footage_reused", f"the clips hold less distinct footage than the {total_s:.1f} s of output: "
                                   "source ranges are shown again")
    if continued:
        warn.add("take_continued", f"{continued} of the {len(split) - 1} cuts asked continue the previous shot's "
                                   "take instead (marked continues: no cut): no other clip or shot of the source fit "
                                   "without a jump cut. More clips, or clips with their own cuts, give more cuts")
    for name, n in jumps.items():
        warn.add("jump_cut", f"{n} cuts go from clip {name} to another moment of it that looks alike "
                             "(a jump cut): no other footage fit. More clips, or fewer cuts (every_other, downbeats), "
                             "avoid them")
    for name, n in off_beat_pictures.items():
        holds = [h1 - h0 for h0, h1 in next(c for c in usable if c.name == name).holds]
        warn.add("picture_change_off_beat", f"{n} shots of clip {name} show one of its new pictures off the beat "
                                            f"(its picture changes only every {sorted(holds)[len(holds) // 2]:.2f} s, "
                                            "out of step with the cuts): no other footage fit")
    if crossed_off_beat:
        warn.add("source_cut_in_shot", f"{crossed_off_beat} shots are longer than every source shot and show a "
                                       "source cut off the beat")
    return EditDecisionList(
        fps=fps, width=width, height=height, fit=config.fit, output_format=config.output_format,
        song=SongWindow(start=round(start, 4), end=round(end, 4), audio_hash=beat_map.audio_hash),
        total_frames=total_frames,
        clips=[ClipRef(index=c.index, name=c.name, duration=round(c.duration, 4)) for c in clips],
        shots=shots, warnings=warn.out(),
    )


def screen_time(edl: EditDecisionList) -> dict[int, float]:
    """Seconds of output each clip fills (every clip of the EDL, 0 for an unused one)."""
    out = {c.index: 0.0 for c in edl.clips}
    for s in edl.shots:
        out[s.clip] += s.frames / edl.fps
    return out
