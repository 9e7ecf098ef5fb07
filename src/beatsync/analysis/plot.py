"""A picture of a beat map a user can check by eye: waveform, onset envelope, beat ticks
(downbeats emphasised) and sections as coloured bands, on a time axis in seconds."""

from __future__ import annotations

import numpy as np

SECTION_COLOURS = {
    "intro": "#9ecae1", "verse": "#a1d99b", "chorus": "#fdae6b", "bridge": "#bcbddc",
    "build": "#fdd0a2", "drop": "#fb6a4a", "outro": "#c6dbef",
}


def plot_beat_map(source, beat_map, out_path, *, width: float = 14.0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .decode import decode_audio
    from .features import FRAME_RATE, FEATURE_SR, compute_features, resample

    audio = decode_audio(source)
    y = resample(audio.samples, audio.sample_rate, FEATURE_SR)
    fig, (ax_w, ax_o) = plt.subplots(2, 1, figsize=(width, 5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    step = max(1, len(y) // 20000)
    t = np.arange(0, len(y), step) / FEATURE_SR
    ax_w.plot(t, y[::step], color="#555555", linewidth=0.5)
    if len(y) and np.any(y):
        onset = compute_features(y).onset
        ax_o.plot(np.arange(len(onset)) / FRAME_RATE, onset / max(onset.max(), 1e-9), color="#3182bd", linewidth=0.8)
    for ax in (ax_w, ax_o):
        for s in beat_map.sections:
            ax.axvspan(s.start_time, s.end_time, color=SECTION_COLOURS.get(s.name, "#eeeeee"), alpha=0.35, lw=0)
        for b in beat_map.beats:
            ax.axvline(b.time, color="#d62728" if b.is_downbeat else "#999999",
                       linewidth=1.6 if b.is_downbeat else 0.5, alpha=0.9 if b.is_downbeat else 0.6)
    for s in beat_map.sections:
        ax_w.text((s.start_time + s.end_time) / 2, 1.02, f"{s.name} ({s.energy:.2f})", ha="center", va="bottom",
                  fontsize=8, transform=ax_w.get_xaxis_transform())
    ax_w.set_ylabel("waveform")
    ax_o.set_ylabel("onset")
    ax_o.set_xlabel("time (s)")
    ax_w.set_title(
        f"{beat_map.tempo:.1f} BPM, {beat_map.time_signature}, {beat_map.total_beats} beats "
        f"({beat_map.detection_method}); red = downbeats", pad=18,
    )
    ax_o.set_xlim(0, max(beat_map.duration, 0.1))
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
