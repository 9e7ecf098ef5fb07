"""Analysis speed on a 3-minute song, per method (madmom's non-commercial models included, for
comparison): warm (in-process, second call) and cold
(a fresh Python process, imports and model loading included; numba cache already filled).

    python benchmarks/analysis_speed.py [--repeat 3]

The song is built by concatenating the shared music (Let's Go Fishin' + Hungarian Dance
No. 5 = 179 s). Prints a table of medians: wall seconds and CPU seconds (user + system, all threads;
the cold column's CPU is the child process's). On a machine shared with other jobs compare CPU seconds.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MUSIC = next((p for p in (ROOT.parent / "shared" / "data" / "music", Path("/work/shared/data/music")) if p.is_dir()),
             ROOT.parent / "shared" / "data" / "music")
PARTS = ["Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg", "hungarian_dance_5.hq.ogg"]

COLD = """
import sys, time
t0 = time.perf_counter()
from beatsync.analysis import analyze
bm = analyze(sys.argv[1], sys.argv[2], allow_noncommercial=True)
print(time.perf_counter() - t0, bm.processing_time_ms / 1000)
"""


def build_song(path: Path) -> float:
    from beatsync.analysis.decode import decode_audio
    from beatsync.analysis.synth import encode_wav

    parts = [decode_audio(MUSIC / p).samples for p in PARTS]
    y = np.concatenate(parts)
    path.write_bytes(encode_wav(y, 44100))
    return len(y) / 44100


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--methods", default="beatnet,librosa,madmom,hybrid")
    args = ap.parse_args(argv)
    from beatsync.analysis import analyze

    with tempfile.TemporaryDirectory() as tmp:
        song = Path(tmp) / "song.wav"
        duration = build_song(song)
        methods = args.methods.split(",")
        import os

        env = {**os.environ, "BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS": "1"}  # warm every method's models
        subprocess.run([sys.executable, "-m", "beatsync.cli", "warmup"], check=True, capture_output=True, env=env)
        print(f"song: {duration:.1f} s, {args.repeat} runs each, medians\n")
        print("| method  | warm s | warm CPU s | cold s (fresh process) | cold CPU s | realtime factor (warm) |")
        print("|---------|--------|------------|------------------------|------------|------------------------|")
        for m in methods:
            analyze(song, m, allow_noncommercial=True)  # first call in this process: load models, JIT
            warm, warm_cpu = [], []
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                analyze(song, m, allow_noncommercial=True)
                warm.append(time.perf_counter() - t0)
                warm_cpu.append(time.process_time() - c0)
            cold, cold_cpu = [], []
            for _ in range(args.repeat):
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", COLD, str(song), m], check=True, capture_output=True)
                cold.append(time.perf_counter() - t0)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cold_cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
            w, c = statistics.median(warm), statistics.median(cold)
            wc, cc = statistics.median(warm_cpu), statistics.median(cold_cpu)
            print(f"| {m:7} | {w:6.2f} | {wc:10.2f} | {c:22.2f} | {cc:10.2f} | {duration / w:22.0f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
