"""Audio analysis: ``analyze(source, method, fps) -> BeatMap``.

Deterministic for a given file, method and fps. Silence gives an empty beat list and tempo 0;
unusable files raise :class:`beatsync.errors.MediaError` with a code.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..errors import InvalidRequest
# the methods and their licences: a light module of their own, which the settings check too
from .methods import DEFAULT_METHOD, METHODS, MODEL_LICENCES, NONCOMMERCIAL_METHODS, check_method

if TYPE_CHECKING:  # keep `import beatsync.analysis` cheap until analyze() runs
    from ..contracts import BeatMap
    from ..ports import BlobStore
    from .decode import Source

DEFAULT_MAX_DURATION = 15 * 60.0
SILENCE_DBFS = -60.0
#: bump when an algorithm changes its output, so cached beat maps are recomputed
ALGORITHM_REVISION = 4  # 3: no beats in pulseless audio (issue 26); 4: and the beat confidence (issue 22)

__all__ = ["DEFAULT_METHOD", "METHODS", "MODEL_LICENCES", "NONCOMMERCIAL_METHODS", "analyze", "check_method"]


def analyze(
    source: "Source",
    method: str = DEFAULT_METHOD,
    fps: float = 30,
    *,
    max_duration: float = DEFAULT_MAX_DURATION,
    cache: "BlobStore | None" = None,
    allow_noncommercial: bool = False,
) -> "BeatMap":
    """Analyse a song (or a video's soundtrack) and return its beat map.

    ``cache``: a blob store; a second analysis of the same bytes with the same method, fps and
    library versions returns the stored map. ``allow_noncommercial``: the caller acknowledges
    the non-commercial licence of madmom's models (needed for ``madmom`` and ``hybrid``).
    """
    check_method(method, allow_noncommercial)
    if not (0 < float(fps) <= 240):
        raise InvalidRequest(f"fps must be in (0, 240], got {fps}", code="invalid_fps")
    started = time.perf_counter()
    from ._libs import library_versions
    from .cache import BeatMapCache, variant_key
    from .decode import content_hash, read_source_bytes

    data = read_source_bytes(source)
    audio_hash = content_hash(data)
    analyzer = f"{library_versions()} algorithm={ALGORITHM_REVISION}"
    variant = variant_key(method, float(fps), analyzer, {"max_duration": max_duration})
    store = BeatMapCache(cache) if cache is not None else None
    if store is not None:
        hit = store.get(audio_hash, variant)
        if hit is not None:
            return hit.model_copy(update={"processing_time_ms": round((time.perf_counter() - started) * 1000, 3)})
    beat_map = _analyze_bytes(source, data, audio_hash, method, float(fps), max_duration, analyzer, started)
    if store is not None:
        store.put(beat_map, variant)
    return beat_map


def _analyze_bytes(source, data, audio_hash, method, fps, max_duration, analyzer, started) -> "BeatMap":
    import numpy as np

    from . import trackers
    from .decode import ANALYSIS_SR, decode_audio
    from .features import FEATURE_SR, compute_features, resample
    from .sections import detect_sections

    audio = decode_audio(source, sample_rate=ANALYSIS_SR, max_duration=max_duration, data=data)
    peak = float(np.max(np.abs(audio.samples))) if audio.samples.size else 0.0
    references: list = []
    if peak <= 10 ** (SILENCE_DBFS / 20) or audio.duration < 1.0:
        track, features, sections = None, None, []
    else:
        activations = None
        y22 = None
        if method in ("beatnet", "madmom", "hybrid"):
            # Import librosa on the other core while the network runs (onnxruntime runs without the
            # GIL; numpy's FFTs and matrix products release it in part): in a fresh process this
            # hides part of librosa's start-up cost.
            import threading

            from ._libs import librosa

            prefetch = threading.Thread(target=librosa, name="import-librosa", daemon=True)
            prefetch.start()
            if method == "beatnet":
                y22 = resample(audio.samples, audio.sample_rate, FEATURE_SR)  # BeatNet's rate, the features' too
                activations = trackers.beatnet_activations(y22)
            else:
                activations = trackers.madmom_activations(audio.samples, audio.sample_rate)
            prefetch.join()
        features = compute_features(y22 if y22 is not None else resample(audio.samples, audio.sample_rate, FEATURE_SR))
        # the onset envelope's tempo: a vote on the metrical level (beatnet); a reference tracker's tempo
        onset_tempo = trackers.onset_tempo(features) if method != "librosa" else 0.0
        if method == "beatnet":
            track = trackers.track_beatnet(activations, onset_tempo)
        elif method == "librosa":
            track = trackers.track_librosa(features)
        elif method == "madmom":
            track = trackers.track_madmom(activations)
        else:
            track = trackers.track_hybrid(features, activations)
        downbeats = track.times[track.positions == 1]
        sections = detect_sections(features, track.times, downbeats, audio.duration)
        if trackers.onset_periodicity(features) < trackers.PULSE_MIN:
            track = None  # noise without a pulse: what a tracker finds in it are not beats
        # the independent estimates the confidence checks the beats against: librosa's tracker at the onsets'
        # tempo and at the network's periodicity for the networks' methods, librosa's predominant local pulse
        # for librosa's own tracker
        if track is None:
            references = []
        elif method == "librosa":
            references = [trackers.pulse_beats(features)]
        else:
            from .beatnet import FPS as BEATNET_FPS

            act_fps = BEATNET_FPS if method == "beatnet" else trackers.MADMOM_FPS
            references = trackers.reference_beats(
                features, [onset_tempo, trackers.activation_tempo(activations.sum(axis=1), act_fps)])
    return _assemble(track, features, sections, audio.duration, fps, method, audio_hash, analyzer, started,
                     references)


def _assemble(track, features, sections, duration, fps, method, audio_hash, analyzer, started,
              references=()) -> "BeatMap":
    """The BeatMap document from a tracking (``None`` or < 2 beats: no beats, tempo 0, confidence 0);
    ``references``: the independent beat estimates the confidence is the agreement with."""
    from ..contracts import Bar, Beat, BeatMap, Section
    from . import trackers
    from .features import beat_strengths

    beats: list[Beat] = []
    bars: list[Bar] = []
    tempo = confidence = 0.0
    section_conf: list[float] = []
    meter = 0
    if track is not None and len(track.times) >= 2:
        times = track.times
        strengths = beat_strengths(features, times)
        meter = track.beats_per_bar
        tempo = round(trackers.tempo_from_beats(times), 2)
        song_conf, section_conf = trackers.confidence(
            times, list(references), [(s.start_time, s.end_time) for s in sections])
        confidence = round(song_conf, 4)
        bar = -1
        for i, (t, pos) in enumerate(zip(times, track.positions)):
            t = round(float(t), 4)
            if pos == 1:
                bar += 1
            beats.append(Beat(index=i, time=t, frame=int(round(t * fps)), strength=float(strengths[i]),
                              is_downbeat=bool(pos == 1), bar=bar, beat_in_bar=int(pos)))
        starts = [b.index for b in beats if b.is_downbeat]
        for k, first in enumerate(starts):
            nxt = starts[k + 1] if k + 1 < len(starts) else None
            end = beats[nxt].time if nxt is not None else min(duration, beats[-1].time + 60.0 / tempo)
            bars.append(Bar(index=k, start_time=beats[first].time, end_time=round(end, 4), beat_index=first,
                            num_beats=(nxt if nxt is not None else len(beats)) - first))
    return BeatMap(
        tempo=tempo, duration=round(duration, 4), fps=fps, total_beats=len(beats), beats_per_bar=meter,
        time_signature=f"{meter}/4" if meter else "none", confidence=confidence, beats=beats, bars=bars,
        sections=[Section(**vars(s), confidence=round(section_conf[k], 4) if section_conf else 0.0)
                  for k, s in enumerate(sections)], detection_method=method,
        model_licence=MODEL_LICENCES[method],
        processing_time_ms=round((time.perf_counter() - started) * 1000, 3), audio_hash=audio_hash,
        analyzer=analyzer,
    )
