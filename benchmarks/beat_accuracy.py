"""Beat and downbeat accuracy per data set, with training overlap and leave-one-set-out selection.

    python benchmarks/beat_accuracy.py [--data ../shared/data/beats] [--candidates a,b,...] [--per-file]
    python benchmarks/beat_accuracy.py --confidence [METHOD] [--committee]   # confidence against beat F

Every figure is reported per data set (the file-name prefix: ``gtzan``, ``ballroom``, ``madmom``):
beat F-measure (70 ms window), CMLt, AMLt, downbeat F-measure, tempo within 8 % (count), s/song.
Each row is marked:

* ``held-out``: no model of the candidate was trained on the set and nothing of it was tuned on it;
* ``TRAINED``: a model it runs was trained on that set (from the model's paper or code): NOT evidence;
* ``TUNED``: a parameter of it was fitted on these very files (the project's latency offsets,
  octave rule and onset refinement were fitted on the shared set): a development figure.

Then a leave-one-set-out choice among the commercially usable candidates (``--choose-from``): for
each set S, the candidate with the best mean beat F + downbeat F over the files of the OTHER
sets is picked (ties: the first listed), and its score on S is reported, if S is held out for it.

The shared set has eight files (GTZAN 5, Ballroom 2, madmom's 2.8 s sample 1): every figure here
is small-sample; a difference of a few hundredths is noise.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _default_data() -> Path:
    """$BEATSYNC_SHARED_DATA/beats, else ../shared/data/beats beside the checkout, else /work/shared/data/beats."""
    import os

    if os.environ.get("BEATSYNC_SHARED_DATA"):
        return Path(os.environ["BEATSYNC_SHARED_DATA"]) / "beats"
    for candidate in (ROOT.parent / "shared" / "data" / "beats", Path("/work/shared/data/beats")):
        if (candidate / "audio").is_dir():
            return candidate
    return ROOT.parent / "shared" / "data" / "beats"


DEFAULT_DATA = _default_data()

#: public data sets each pretrained model was trained on (only the sets that occur here matter).
#: madmom's downbeat RNNs (Böck, Krebs, Widmer, ISMIR 2016): Ballroom, Beatles, Hainsworth, HJDB,
#: RWC popular, Robbie Williams, Rock, Klapuri... not GTZAN (a test set in the paper).
#: BeatNet (Heydari, Cwitkowitz, Duan, ISMIR 2021): each model leaves one set out of the pool
#: (labels in BeatNet's code: 1 "GTZAN out", 2 "Ballroom out", 3 "Rock corpus out"), so model 1
#: saw Ballroom, model 2 saw GTZAN, model 3 saw both. The madmom sample is madmom's own test file.
TRAINED_ON = {
    "madmom-plain": {"ballroom"},
    "madmom": {"ballroom"},
    "hybrid": {"ballroom"},
    "beatnet": {"ballroom"},  # model 1
    "beatnet-m2": {"gtzan"},
    "beatnet-m3": {"gtzan", "ballroom"},
    "beatnet-ens": {"gtzan", "ballroom"},
    "beatnet-m1-bpb234": {"ballroom"},
    "librosa": set(),
    "librosa-plain": set(),
}
#: sets whose files a candidate's parameters were fitted on (before this protocol existed)
TUNED_ON = {
    "librosa": {"gtzan", "ballroom", "madmom"},  # latency offset, tempo refinement, edge trim, meter rule
    "madmom": {"gtzan", "ballroom", "madmom"},  # latency offset
    "hybrid": {"gtzan", "ballroom", "madmom"},  # latency offset, onset weight, octave rule
}
MODEL_LICENCE = {
    "beatnet": "CC-BY-4.0", "beatnet-m2": "CC-BY-4.0", "beatnet-m3": "CC-BY-4.0", "beatnet-ens": "CC-BY-4.0",
    "beatnet-m1-bpb234": "CC-BY-4.0", "librosa": "none", "librosa-plain": "none",
    "madmom": "CC-BY-NC-SA-4.0", "hybrid": "CC-BY-NC-SA-4.0", "madmom-plain": "CC-BY-NC-SA-4.0",
}
CANDIDATES = tuple(TRAINED_ON)
COMMERCIAL = tuple(c for c in CANDIDATES if "-NC" not in MODEL_LICENCE[c])


def load_annotations(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    times = np.array([float(r[0]) for r in rows])
    pos = np.array([int(float(r[1])) if len(r) > 1 else 0 for r in rows])
    return times, times[pos == 1]


def data_set(audio: Path) -> str:
    return audio.stem.split(".", 1)[0]


@functools.lru_cache(maxsize=4)
def _beatnet_probs(audio: str) -> tuple[np.ndarray, float]:
    """(frames, 3, models) BeatNet probabilities of all three models, and the duration."""
    from beatsync.analysis import beatnet
    from beatsync.analysis.decode import ANALYSIS_SR, decode_audio
    from beatsync.analysis.features import FEATURE_SR, resample

    a = decode_audio(audio, sample_rate=ANALYSIS_SR)
    feats = beatnet.features(resample(a.samples, a.sample_rate, FEATURE_SR))
    return np.stack([beatnet.forward(feats, m) for m in beatnet.MODEL_IDS], axis=2), a.duration


def _decode(act: np.ndarray, fps: float, beats_per_bar=(3, 4)) -> tuple[np.ndarray, np.ndarray]:
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor

    dbn = DBNDownBeatTrackingProcessor(beats_per_bar=list(beats_per_bar), min_bpm=55.0, max_bpm=215.0, fps=fps,
                                       num_tempi=60)
    r = np.asarray(dbn(np.ascontiguousarray(act, dtype=np.float64)))
    if r.ndim != 2 or len(r) == 0:
        return np.zeros(0), np.zeros(0)
    return r[:, 0], r[r[:, 1] == 1, 0]


def estimate(candidate: str, audio: Path) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(beats, downbeats, tempo, duration) of one candidate on one file."""
    from beatsync.analysis import METHODS, analyze, trackers

    if candidate in METHODS:
        bm = analyze(audio, candidate, allow_noncommercial=True)
        return (np.array([b.time for b in bm.beats]), np.array([b.time for b in bm.beats if b.is_downbeat]),
                bm.tempo, bm.duration)
    if candidate.startswith("beatnet-"):
        probs, duration = _beatnet_probs(str(audio))
        models = {"beatnet-m2": [1], "beatnet-m3": [2], "beatnet-ens": [0, 1, 2], "beatnet-m1-bpb234": [0]}[candidate]
        act = probs[:, :2, models].mean(axis=2)
        beats, down = _decode(act, 50.0, (2, 3, 4) if candidate.endswith("bpb234") else (3, 4))
        return beats, down, trackers.tempo_from_beats(beats), duration
    from beatsync.analysis.decode import ANALYSIS_SR, decode_audio

    a = decode_audio(audio, sample_rate=ANALYSIS_SR)
    if candidate == "madmom-plain":  # madmom's reference pipeline, called directly
        act = trackers.madmom_activations(a.samples, a.sample_rate)
        beats, down = _decode(act, 100.0)
        return beats, down, trackers.tempo_from_beats(beats), a.duration
    if candidate == "librosa-plain":  # librosa.beat.beat_track, every 4th beat a downbeat
        from beatsync.analysis._libs import librosa

        lr = librosa()
        _, beats = lr.beat.beat_track(y=a.samples, sr=a.sample_rate, units="time")
        return beats, beats[::4], trackers.tempo_from_beats(beats), a.duration
    raise ValueError(f"unknown candidate {candidate!r}")


def score_estimate(est: np.ndarray, est_down: np.ndarray, tempo: float, duration: float, ann: Path) -> dict:
    return score_arrays(est, est_down, tempo, duration, *load_annotations(ann))


def score_arrays(est: np.ndarray, est_down: np.ndarray, tempo: float, duration: float, ref_beats: np.ndarray,
                 ref_down: np.ndarray) -> dict:
    import mir_eval

    # mir_eval's convention ignores the first 5 s; a clip shorter than 10 s is scored whole
    trim = mir_eval.beat.trim_beats if duration >= 10 else (lambda x: x)
    rb, eb = trim(ref_beats), trim(est)
    cont = mir_eval.beat.continuity(rb, eb) if len(rb) > 1 and len(eb) > 1 else (0, 0, 0, 0)
    ref_tempo = 60.0 / np.median(np.diff(ref_beats)) if len(ref_beats) > 1 else 0.0
    return {
        "F": mir_eval.beat.f_measure(rb, eb),
        "CMLt": cont[1],
        "AMLt": cont[3],
        "downF": mir_eval.beat.f_measure(trim(ref_down), trim(est_down)) if len(ref_down) > 1 else float("nan"),
        "tempo_ok": float(ref_tempo > 0 and abs(tempo / ref_tempo - 1) <= 0.08),
    }


def score(method: str, audio: Path, ann: Path) -> dict:
    """One candidate (or analysis method) on one annotated file, with its run time."""
    t0 = time.perf_counter()
    est, est_down, tempo, duration = estimate(method, audio)
    out = score_estimate(est, est_down, tempo, duration, ann)
    out["seconds"] = time.perf_counter() - t0
    return out


def mark(candidate: str, s: str) -> str:
    if s in TRAINED_ON.get(candidate, set()):
        return "TRAINED"
    if s in TUNED_ON.get(candidate, set()):
        return "TUNED"
    return "held-out"


def _mean(rows: list[dict]) -> dict:
    def nanmean(values: list[float]) -> float:  # nan when no value (the 2.8 s sample has no downbeat F)
        values = [v for v in values if not np.isnan(v)]
        return float(np.mean(values)) if values else float("nan")

    out = {k: nanmean([r[k] for r in rows]) for k in ("F", "CMLt", "AMLt", "downF", "seconds")}
    out["tempo_ok"] = int(sum(r["tempo_ok"] for r in rows))
    out["n"] = len(rows)
    return out


def _objective(rows: list[dict]) -> float:
    m = _mean(rows)
    return m["F"] + (0.0 if np.isnan(m["downF"]) else m["downF"])


def leave_one_set_out(results: dict[str, list[dict]], pool: list[str]) -> list[dict]:
    sets = sorted({r["set"] for rows in results.values() for r in rows})
    out = []
    for held in sets:
        eligible = [c for c in pool if mark(c, held) == "held-out"]
        if not eligible:
            out.append({"set": held, "chosen": None})
            continue
        best = max(eligible, key=lambda c: (_objective([r for r in results[c] if r["set"] != held]), -pool.index(c)))
        out.append({"set": held, "chosen": best, "eligible": eligible,
                    **_mean([r for r in results[best] if r["set"] == held])})
    return out


def run(data: Path, candidates: list[str], per_file: bool, choose_from: list[str]) -> dict:
    files = sorted((data / "audio").glob("*.wav"))
    results: dict[str, list[dict]] = {c: [] for c in candidates}
    for c in candidates:
        estimate(c, files[-1])  # the first call pays imports, JIT and model loads: not timed
    _beatnet_probs.cache_clear()
    for audio in files:
        ann = data / "annotations" / (audio.stem + ".beats")
        for c in candidates:
            r = score(c, audio, ann)
            r.update(file=audio.stem, set=data_set(audio))
            results[c].append(r)
    sets = sorted({data_set(f) for f in files})
    print(f"Per data set ({len(files)} files: " + ", ".join(f"{s} {sum(data_set(f) == s for f in files)}" for s in sets)
          + "). TRAINED = a model saw the set in training; TUNED = fitted on these files: neither is evidence.\n")
    print("| candidate | licence | set | n | beat F | CMLt | AMLt | downbeat F | tempo ok | s/song | status |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in candidates:
        for s in sets:
            m = _mean([r for r in results[c] if r["set"] == s])
            print(f"| {c} | {MODEL_LICENCE[c]} | {s} | {m['n']} | {m['F']:.3f} | {m['CMLt']:.3f} | {m['AMLt']:.3f} |"
                  f" {m['downF']:.3f} | {m['tempo_ok']}/{m['n']} | {m['seconds']:.2f} | {mark(c, s)} |")
    if per_file:
        print("\n| candidate | file | beat F | CMLt | AMLt | downbeat F | tempo ok |")
        print("|---|---|---|---|---|---|---|")
        for c in candidates:
            for r in results[c]:
                print(f"| {c} | {r['file']} | {r['F']:.3f} | {r['CMLt']:.3f} | {r['AMLt']:.3f} | {r['downF']:.3f} |"
                      f" {int(r['tempo_ok'])} |")
    print("\nHeld-out only (files of sets that no model of the candidate saw and nothing was tuned on):\n")
    print("| candidate | sets | n | beat F | CMLt | AMLt | downbeat F | tempo ok |")
    print("|---|---|---|---|---|---|---|---|")
    for c in candidates:
        rows = [r for r in results[c] if mark(c, r["set"]) == "held-out"]
        m = _mean(rows)
        held = ",".join(sorted({r["set"] for r in rows})) or "-"
        print(f"| {c} | {held} | {m['n']} | {m['F']:.3f} | {m['CMLt']:.3f} | {m['AMLt']:.3f} | {m['downF']:.3f} |"
              f" {m['tempo_ok']}/{m['n']} |")
    pool = [c for c in choose_from if c in results]
    loso = leave_one_set_out(results, pool)
    if pool:
        print(f"\nLeave one set out: chosen among {', '.join(pool)} on the other sets (beat F + downbeat F),"
              " reported on the held-out set:\n")
        print("| held-out set | chosen | n | beat F | downbeat F | tempo ok |")
        print("|---|---|---|---|---|---|")
        for row in loso:
            if row["chosen"] is None:
                print(f"| {row['set']} | (every candidate saw it) | | | | |")
            else:
                print(f"| {row['set']} | {row['chosen']} | {row['n']} | {row['F']:.3f} | {row['downF']:.3f} |"
                      f" {row['tempo_ok']}/{row['n']} |")
    return {"results": results, "loso": loso}


#: degradations for the confidence table: the shared songs made harder (noise, rubato, gaps)
DEGRADATIONS = ("original", "noise", "rubato", "gaps")


def degrade(y: np.ndarray, sr: int, kind: str, ref: np.ndarray, ref_down: np.ndarray, seed: int = 0):
    """(samples, beats, downbeats): the song and its annotations under one degradation.

    * ``noise``: white noise as loud as the music (0 dB SNR);
    * ``rubato``: played at a speed that swings ±25 % every 7 s (resampled by linear interpolation;
      the annotations are warped the same way): the tempo never holds;
    * ``gaps``: every other 4 s silent (annotated beats there are still counted: a tracker that
      keeps the pulse through a gap is right).
    """
    if kind == "original":
        return y, ref, ref_down
    if kind == "noise":
        rms = float(np.sqrt(np.mean(y ** 2))) or 1e-3
        noise = np.random.default_rng(seed).standard_normal(len(y)).astype(np.float32) * rms
        out = y + noise
        return out / max(1.0, float(np.abs(out).max()) / 0.9), ref, ref_down
    if kind == "rubato":
        t_out = np.arange(int(len(y) / sr * 0.8 * sr)) / sr  # output time, enough for the slowest case
        t_in = np.cumsum(1.0 + 0.25 * np.sin(2 * np.pi * t_out / 7.0)) / sr  # song position played at t_out
        t_out, t_in = t_out[t_in < len(y) / sr], t_in[t_in < len(y) / sr]
        out = np.interp(t_in * sr, np.arange(len(y)), y).astype(np.float32)
        warp = lambda x: np.interp(x[x < t_in[-1]], t_in, t_out)  # noqa: E731
        return out, warp(ref), warp(ref_down)
    if kind == "gaps":
        out = y.copy()
        t = np.arange(len(y)) / sr
        out[(t // 4.0) % 2 == 1] = 0.0
        return out, ref, ref_down
    raise ValueError(kind)


def _committee(y: np.ndarray, sr: int) -> float:
    """Agreement of BeatNet model 1's beats with models 2 and 3 (mean beat F): the alternative
    confidence, from three networks instead of the network against librosa's tracker."""
    from beatsync.analysis import beatnet, trackers
    from beatsync.analysis.features import FEATURE_SR, resample

    feats = beatnet.features(resample(y, sr, FEATURE_SR))
    beats = [_decode(beatnet.forward(feats, m)[:, :2], 50.0)[0] for m in beatnet.MODEL_IDS]
    return float(np.mean([trackers.beat_agreement(beats[0], b) for b in beats[1:]]))


def confidence_table(data: Path, method: str, committee: bool) -> list[dict]:
    """Confidence against beat F for ``method`` on every file under every degradation."""
    import io

    from beatsync.analysis import analyze
    from beatsync.analysis.decode import ANALYSIS_SR, decode_audio
    from beatsync.analysis.synth import encode_wav
    from beatsync.contracts.beat_map import LOW_CONFIDENCE

    rows = []
    for audio in sorted((data / "audio").glob("*.wav")):
        a = decode_audio(audio, sample_rate=ANALYSIS_SR)
        ref, ref_down = load_annotations(data / "annotations" / (audio.stem + ".beats"))
        for kind in DEGRADATIONS:
            y, rb, rd = degrade(a.samples, a.sample_rate, kind, ref, ref_down)
            bm = analyze(io.BytesIO(encode_wav(y, a.sample_rate)), method, allow_noncommercial=True)
            est = np.array([b.time for b in bm.beats])
            m = score_arrays(est, est[[b.is_downbeat for b in bm.beats]] if len(est) else est, bm.tempo,
                             bm.duration, rb, rd)
            rows.append({"file": audio.stem, "kind": kind, "confidence": bm.confidence, "F": m["F"],
                         "committee": _committee(y, a.sample_rate) if committee else float("nan")})
    print(f"\nConfidence against beat F, `{method}` on every file as it is and degraded "
          f"({', '.join(DEGRADATIONS)}; benchmarks/beat_accuracy.py degrade()):\n")
    print("| file | " + " | ".join(DEGRADATIONS) + " |")
    print("|---|" + "---|" * len(DEGRADATIONS))
    for f in dict.fromkeys(r["file"] for r in rows):
        cells = [next(r for r in rows if r["file"] == f and r["kind"] == k) for k in DEGRADATIONS]
        print(f"| {f} | " + " | ".join(f"conf {r['confidence']:.2f} / F {r['F']:.2f}" for r in cells) + " |")

    def rank(x: np.ndarray) -> np.ndarray:
        return np.argsort(np.argsort(x)).astype(float)

    conf = np.array([r["confidence"] for r in rows])
    f = np.array([r["F"] for r in rows])
    print("\n| confidence | n | mean beat F | F < 0.5 |")
    print("|---|---|---|---|")
    for label, sel in ((f"< {LOW_CONFIDENCE:g} (low: the edit falls back)", conf < LOW_CONFIDENCE),
                       (f">= {LOW_CONFIDENCE:g}", conf >= LOW_CONFIDENCE)):
        n = int(sel.sum())
        print(f"| {label} | {n} | {f[sel].mean() if n else float('nan'):.3f} | {int((f[sel] < 0.5).sum())} |")
    print(f"\nSpearman rank correlation of confidence with beat F over the {len(rows)} cases: "
          f"{np.corrcoef(rank(conf), rank(f))[0, 1]:.2f}")
    if committee:
        com = np.array([r["committee"] for r in rows])
        low = com < LOW_CONFIDENCE
        print(f"Alternative (BeatNet model 1 against models 2 and 3, not what the beat map uses): rank "
              f"correlation {np.corrcoef(rank(com), rank(f))[0, 1]:.2f}; below {LOW_CONFIDENCE:g}: "
              f"{int(low.sum())} cases, mean F {f[low].mean() if low.any() else float('nan'):.3f}")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--candidates", default=",".join(CANDIDATES), help=f"any of {', '.join(CANDIDATES)}")
    ap.add_argument("--choose-from", default="beatnet,beatnet-m2,beatnet-m3,beatnet-ens,beatnet-m1-bpb234",
                    help="candidates the leave-one-set-out choice considers")
    ap.add_argument("--per-file", action="store_true")
    ap.add_argument("--confidence", metavar="METHOD", nargs="?", const="beatnet",
                    help="only the confidence-against-F table for METHOD (default beatnet), degradations too")
    ap.add_argument("--committee", action="store_true",
                    help="with --confidence: also the agreement of the three BeatNet networks")
    args = ap.parse_args(argv)
    if not (args.data / "audio").is_dir():
        print(f"no annotated data at {args.data}", file=sys.stderr)
        return 2
    if args.confidence:
        confidence_table(args.data, args.confidence, args.committee)
        return 0
    candidates = args.candidates.split(",")
    unknown = [c for c in candidates if c not in TRAINED_ON]
    if unknown:
        print(f"unknown candidates: {', '.join(unknown)}", file=sys.stderr)
        return 2
    run(args.data, candidates, args.per_file, args.choose_from.split(","))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
