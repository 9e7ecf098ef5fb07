"""Peak RSS of one 1080p render under the encoder and decoder settings that decide it.

    python benchmarks/render_memory.py [--seconds 10]

The edit is parallel_render.py's (render_speed.py's 1080p30 edit: a cut every 0.5 s over the
shared clips upscaled to 1080p, x264 veryfast CRF 23), video only, as a compose task renders a
segment. Each row is a fresh process; peak RSS is its ru_maxrss. Rows:

- x264 frame threads 6 (x264's own choice on a 4 vCPU task), 4, 3 (the shipped cap,
  ``ENCODER_MAX_THREADS``), 2, each with the shipped ``sync-lookahead`` and with x264's default;
  ``sync-lookahead=0`` (the lookahead in the calling thread); the bitstream's size shows which
  settings change the encode (sync-lookahead does not);
- no encoder at all (decode, convert, thumbnail scoring): what the rest of the render holds;
- more clips in turn than the reader pool keeps open (``max_open`` below the clip count), which
  closes and reopens decoders at every shot.

Wall seconds on a 2-core machine say little about a 4 vCPU task: read them as a hint only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from render_speed import prepare_sources, shots  # noqa: E402

SCRIPT = r"""
import json, resource, sys, time
from beatsync.render import encode, frames
spec = json.loads(sys.argv[1])
if spec["x264_params"] is not None:
    encode.X264_PARAMS = spec["x264_params"]
if spec["max_open"]:
    init = frames.ReaderPool.__init__
    frames.ReaderPool.__init__ = lambda self, *a, **k: init(self, *a, **{**k, "max_open": spec["max_open"]})
if spec["no_encoder"]:
    class NoEncoder:
        def __init__(self, stream): self.stream = stream
        def encode(self, frame): return []
    video_stream = encode._video_stream
    encode._video_stream = lambda *a: NoEncoder(video_stream(*a))
sys.path.insert(0, spec["bench_dir"])
from render_speed import cut_edit
edl, probes = cut_edit(spec["sources"], spec["shots"], spec["seconds"])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
c0, t0 = time.process_time(), time.perf_counter()
r = encode.render(edl, probes, "", spec["out"], preset="veryfast", crf=23, with_audio=False,
                  threads=spec["threads"])
print(json.dumps({"before_mb": before, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0, "bytes": r.file_size}))
"""


def run(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    from beatsync.render.encode import ENCODER_MAX_THREADS, X264_PARAMS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of 1080p30 output per render")
    args = ap.parse_args(argv)
    sources = [str(p) for p in prepare_sources()]
    edit = shots(args.seconds)
    shipped, default = X264_PARAMS, ""
    rows = [(f"{t} threads, {name}", {"threads": t, "x264_params": params})
            for t in (6, 4, ENCODER_MAX_THREADS, 2)
            for name, params in ((f"{shipped} (shipped)", shipped), ("x264's default sync-lookahead", default))]
    rows += [(f"{ENCODER_MAX_THREADS} threads, sync-lookahead=0", {"threads": ENCODER_MAX_THREADS,
                                                                   "x264_params": "sync-lookahead=0"}),
             ("no encoder (decode, convert, thumbnail)", {"threads": ENCODER_MAX_THREADS, "no_encoder": True}),
             (f"{len(sources)} clips in turn, 3 decoders kept open", {"threads": ENCODER_MAX_THREADS, "max_open": 3})]
    print(f"{args.seconds:.0f} s of 1920x1080@30 video (no audio), {len(sources)} clips, a cut every 0.5 s, "
          f"x264 veryfast CRF 23; a fresh process per row\n")
    print("| configuration | peak RSS MB | before rendering MB | CPU s | wall s | bytes |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in rows:
            spec = {"sources": sources, "shots": edit, "seconds": args.seconds, "out": os.path.join(tmp, "o.mp4"),
                    "bench_dir": str(ROOT / "benchmarks"),
                    "x264_params": None, "max_open": 0, "no_encoder": False, **extra}
            r = run(spec)
            size = "-" if spec["no_encoder"] else str(r["bytes"])
            print(f"| {name} | {r['peak_mb']:.0f} | {r['before_mb']:.0f} | {r['cpu_s']:.1f} | {r['wall_s']:.1f} "
                  f"| {size} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
