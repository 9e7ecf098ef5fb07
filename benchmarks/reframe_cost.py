"""What fit "smart" costs: the same vertical edit (1080x1920, 30 fps, a cut every 0.5 s over the
shared Intel clips upscaled to 1080p, as in render_speed.py) rendered with fit fill and with fit
smart, each in a fresh process, interleaved.

    python benchmarks/reframe_cost.py [--seconds 30] [--repeat 2] [--shot 0.5]

Prints medians of wall and CPU seconds per run, the smart crop-path planning time alone (the
analysis pass), and the added seconds per minute of output (smart minus fill, scaled to 60 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render_speed import SONG, prepare_sources  # noqa: E402

W, H, FPS = 1080, 1920, 30
# a worktree beside the checkout may have no ../shared: the workspace's copy, as tests/conftest.py does
SONG_PATH = SONG if SONG.exists() else Path("/work/shared/data/music") / SONG.name

CHILD = r"""
import json, sys, time, resource
from beatsync.contracts import EditDecisionList, Shot, Transition, SongWindow, ClipRef
from beatsync.render.encode import render
from beatsync.render.probe import probe_clip
from beatsync.render import reframe
spec = json.loads(sys.argv[1])
probes = [probe_clip(p) for p in spec["sources"]]
shots = [Shot(index=i, clip=s["clip"], source_in=s["source_in"], start_frame=s["start"], end_frame=s["end"],
              transition=Transition(style="cut", duration=0), section="verse", motion=0.5)
         for i, s in enumerate(spec["shots"])]
edl = EditDecisionList(fps=30, width=spec["w"], height=spec["h"], fit=spec["fit"], output_format="mp4",
                       song=SongWindow(start=30.0, end=30.0 + spec["seconds"], audio_hash="-"),
                       total_frames=spec["shots"][-1]["end"],
                       clips=[ClipRef(index=i, name=p.path, duration=p.duration) for i, p in enumerate(probes)],
                       shots=shots)
plan_s = 0.0
if spec["fit"] == "smart":
    t0 = time.process_time()
    reframe.plan_crops(edl, probes)  # timed alone; render() plans again
    plan_s = time.process_time() - t0
w0, c0 = time.perf_counter(), time.process_time()
render(edl, probes, spec["song"], spec["out"], preset="veryfast", crf=23)
print(json.dumps({"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0, "plan_cpu": plan_s}))
"""


def shots(seconds: float, shot: float, n_sources: int, clip_duration: float = 40.0) -> list[dict]:
    n = int(seconds / shot)
    frames = int(round(shot * FPS))
    return [{"clip": i % n_sources, "source_in": round(((i // n_sources) * 1.7) % (clip_duration - 2 - shot), 3),
             "start": i * frames, "end": (i + 1) * frames} for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--shot", type=float, default=0.5)
    args = ap.parse_args()
    sources = [str(p) for p in prepare_sources()]
    results: dict[str, list[dict]] = {"fill": [], "smart": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for fit in ("fill", "smart"):
                spec = {"sources": sources, "shots": shots(args.seconds, args.shot, len(sources)), "fit": fit,
                        "w": W, "h": H, "seconds": args.seconds, "song": str(SONG_PATH),
                        "out": os.path.join(tmp, f"{fit}.mp4")}
                out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], check=True, capture_output=True,
                                     text=True)
                results[fit].append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {fit: {k: statistics.median(r[k] for r in rs) for k in ("wall", "cpu", "plan_cpu")}
           for fit, rs in results.items()}
    scale = 60.0 / args.seconds
    print(f"{args.seconds:.0f} s of {W}x{H} output, a cut every {args.shot} s, median of {args.repeat}")
    print(f"{'fit':<8}{'wall s':>10}{'CPU s':>10}{'plan CPU s':>12}")
    for fit in ("fill", "smart"):
        m = med[fit]
        print(f"{fit:<8}{m['wall']:>10.1f}{m['cpu']:>10.1f}{m['plan_cpu']:>12.1f}")
    print(f"smart adds {(med['smart']['wall'] - med['fill']['wall']) * scale:.1f} wall s and "
          f"{(med['smart']['cpu'] - med['fill']['cpu']) * scale:.1f} CPU s per minute of output "
          f"(of which planning {med['smart']['plan_cpu'] * scale:.1f} CPU s)")


if __name__ == "__main__":
    main()
