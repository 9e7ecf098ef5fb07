"""Score librosa, madmom and hybrid beat maps against human annotations with mir_eval.

    python benchmarks/beat_accuracy.py [--data ../shared/data/beats] [--methods librosa,madmom,hybrid]

Prints one row per method and file (with --per-file) and a mean row per method: beat
F-measure (70 ms window), CMLt, AMLt, downbeat F-measure, and tempo within 8 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "beats"


def load_annotations(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    times = np.array([float(r[0]) for r in rows])
    pos = np.array([int(float(r[1])) if len(r) > 1 else 0 for r in rows])
    return times, times[pos == 1]


def score(method: str, audio: Path, ann: Path) -> dict:
    import mir_eval

    from beatsync.analysis import analyze

    ref_beats, ref_down = load_annotations(ann)
    t0 = time.perf_counter()
    bm = analyze(audio, method)
    elapsed = time.perf_counter() - t0
    est = np.array([b.time for b in bm.beats])
    est_down = np.array([b.time for b in bm.beats if b.is_downbeat])
    # mir_eval's convention ignores the first 5 s; a clip shorter than 10 s is scored whole
    trim = mir_eval.beat.trim_beats if bm.duration >= 10 else (lambda x: x)
    rb, eb = trim(ref_beats), trim(est)
    cont = mir_eval.beat.continuity(rb, eb) if len(rb) > 1 and len(eb) > 1 else (0, 0, 0, 0)
    ref_tempo = 60.0 / np.median(np.diff(ref_beats)) if len(ref_beats) > 1 else 0.0
    return {
        "F": mir_eval.beat.f_measure(rb, eb),
        "CMLt": cont[1],
        "AMLt": cont[3],
        "downF": mir_eval.beat.f_measure(trim(ref_down), trim(est_down))
        if len(ref_down) > 1 else float("nan"),
        "tempo_ok": float(ref_tempo > 0 and abs(bm.tempo / ref_tempo - 1) <= 0.08),
        "meter": bm.beats_per_bar,
        "ref_meter": int(max((int(float(l.split()[1])) for l in ann.read_text().split("\n") if l.strip()), default=0)),
        "seconds": elapsed,
    }


def run(data: Path, methods: list[str], per_file: bool) -> dict[str, dict]:
    files = sorted((data / "audio").glob("*.wav"))
    results: dict[str, list[dict]] = {m: [] for m in methods}
    from beatsync.analysis import analyze

    analyze(files[0], methods[0])  # warm-up (JIT, model load) so timings are per song
    for audio in files:
        ann = data / "annotations" / (audio.stem + ".beats")
        for m in methods:
            r = score(m, audio, ann)
            r["file"] = audio.stem
            results[m].append(r)
    header = f"| {'method':8} | {'file':32} | beat F | CMLt  | AMLt  | downbeat F | tempo ok | meter (ref) | s/song |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    summary = {}
    for m in methods:
        rows = results[m]
        if per_file:
            for r in rows:
                print(f"| {m:8} | {r['file']:32} | {r['F']:.3f}  | {r['CMLt']:.3f} | {r['AMLt']:.3f} | {r['downF']:.3f}      |"
                      f" {int(r['tempo_ok'])}        | {r['meter']} ({r['ref_meter']})       | {r['seconds']:.2f}   |")
        mean = {k: float(np.nanmean([r[k] for r in rows])) for k in ("F", "CMLt", "AMLt", "downF", "seconds")}
        tempo_ok = int(sum(r["tempo_ok"] for r in rows))
        meter_ok = int(sum(r["meter"] == r["ref_meter"] for r in rows))
        mean["tempo_ok"] = tempo_ok
        mean["meter_ok"] = meter_ok
        summary[m] = mean
        print(f"| {m:8} | {'MEAN (' + str(len(rows)) + ' songs)':32} | {mean['F']:.3f}  | {mean['CMLt']:.3f} | {mean['AMLt']:.3f} |"
              f" {mean['downF']:.3f}      | {tempo_ok}/{len(rows)}      | {meter_ok}/{len(rows)} right    | {mean['seconds']:.2f}   |")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--methods", default="librosa,madmom,hybrid")
    ap.add_argument("--per-file", action="store_true")
    args = ap.parse_args(argv)
    if not (args.data / "audio").is_dir():
        print(f"no annotated data at {args.data}", file=sys.stderr)
        return 2
    run(args.data, args.methods.split(","), args.per_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
