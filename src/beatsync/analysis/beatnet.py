"""BeatNet's beat/downbeat CRNN, run with numpy (no torch at run time).

BeatNet (Heydari, Cwitkowitz and Duan, ISMIR 2021; https://github.com/mjhydri/BeatNet) ships
three trained CRNNs under CC BY 4.0 (commercial use allowed, attribution required). Their
state dicts were converted once to ``models/beatnet_crnn.npz`` by
``benchmarks/convert_beatnet_weights.py`` (torch is needed only for that conversion; the
same script checks that :func:`forward` equals the torch forward pass). Attribution and
licence: ``models/BEATNET-LICENSE.md``.

The three models differ only in the data set held out of training (labels from BeatNet's
code): 1 = "GTZAN out", 2 = "Ballroom out", 3 = "Rock corpus out".

Network (``BeatNet/model.py``, ``BDA(272, 150, 2)``): per frame, conv1d(1 -> 2, kernel 10) over
the 272 features, ReLU, max-pool 2, linear 262 -> 150; a 2-layer unidirectional LSTM (150
cells, state zeroed per file); linear 150 -> 3; softmax over (beat, downbeat, no beat).

Features (``BeatNet/log_spect.py``): madmom's filtered log spectrogram of the 22.05 kHz mono
signal, frames of 1411 samples every 441 (50 fps), 24 bands per octave from 30 Hz to 17 kHz,
``log10(1 + S)``, stacked with its positive half-wave difference (diff_ratio 0.5): 272 values
per frame. madmom's processors are BSD-licensed code; only madmom's own *models* are not used.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

SAMPLE_RATE = 22050
HOP = 441  # 20 ms
WIN = 1411  # 64 ms
FPS = SAMPLE_RATE / HOP  # 50 frames per second
N_FEATURES = 272
MODEL_IDS = (1, 2, 3)
WEIGHTS_FILE = "beatnet_crnn.npz"
LICENCE = "CC-BY-4.0"
ATTRIBUTION = "BeatNet CRNN weights (c) Mojtaba Heydari et al., CC BY 4.0, https://github.com/mjhydri/BeatNet"

_PARAMS = ("conv1.weight", "conv1.bias", "linear0.weight", "linear0.bias",
           "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0",
           "lstm.weight_ih_l1", "lstm.weight_hh_l1", "lstm.bias_ih_l1", "lstm.bias_hh_l1",
           "linear.weight", "linear.bias")


@functools.cache
def weights(model: int) -> dict[str, np.ndarray]:
    """One model's parameters (float32), keyed as in BeatNet's torch state dict."""
    if model not in MODEL_IDS:
        raise ValueError(f"BeatNet model must be one of {MODEL_IDS}, got {model}")
    with resources.files(__package__).joinpath("models", WEIGHTS_FILE).open("rb") as fh, np.load(fh) as npz:
        return {name: np.ascontiguousarray(npz[f"model{model}/{name}"], dtype=np.float32) for name in _PARAMS}


def _lstm_layer(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
    """torch.nn.LSTM (one layer, batch 1, zero initial state); gate order i, f, g, o.

    sigmoid(a) = (1 + tanh(a / 2)) / 2, so the i, f and o rows of the weights are halved once and
    each step needs one tanh over all four gates (fewer numpy calls: the loop is Python-bound).
    """
    n = w_hh.shape[1]
    scale = np.full(4 * n, 0.5, dtype=np.float32)
    scale[2 * n : 3 * n] = 1.0
    gates_x = (x @ w_ih.T + (b_ih + b_hh)) * scale  # input projection for every frame at once
    w_hh_t = np.ascontiguousarray(w_hh.T * scale, dtype=np.float32)
    h = np.zeros(n, dtype=np.float32)
    c = np.zeros(n, dtype=np.float32)
    z = np.empty(4 * n, dtype=np.float32)
    out = np.empty((x.shape[0], n), dtype=np.float32)
    for t in range(x.shape[0]):
        np.tanh(gates_x[t] + h @ w_hh_t, out=z)
        gate = 0.5 * z + 0.5  # i, f, (unused), o as sigmoids
        c = gate[n : 2 * n] * c + gate[:n] * z[2 * n : 3 * n]
        h = gate[3 * n :] * np.tanh(c)
        out[t] = h
    return out


def forward(features: np.ndarray, model: int = 1, params: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(frames, 3) softmax probabilities (beat, downbeat, no beat) for (frames, 272) features."""
    p = weights(model) if params is None else params
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != N_FEATURES:
        raise ValueError(f"features must be (frames, {N_FEATURES}), got {x.shape}")
    if x.shape[0] == 0:
        return np.zeros((0, 3), np.float32)
    k = p["conv1.weight"].shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, k, axis=1)  # (T, 263, 10)
    conv = np.einsum("tlk,ck->tcl", windows, p["conv1.weight"][:, 0, :]) + p["conv1.bias"][None, :, None]
    conv = np.maximum(conv, 0.0)
    pooled_len = conv.shape[2] // 2
    pooled = conv[:, :, : 2 * pooled_len].reshape(x.shape[0], conv.shape[1], pooled_len, 2).max(axis=3)
    h = pooled.reshape(x.shape[0], -1) @ p["linear0.weight"].T + p["linear0.bias"]
    h = np.ascontiguousarray(h, dtype=np.float32)
    for layer in (0, 1):
        h = _lstm_layer(h, p[f"lstm.weight_ih_l{layer}"], p[f"lstm.weight_hh_l{layer}"],
                        p[f"lstm.bias_ih_l{layer}"], p[f"lstm.bias_hh_l{layer}"])
    logits = h @ p["linear.weight"].T + p["linear.bias"]
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@functools.cache
def _feature_processor():
    from madmom.audio.signal import FramedSignalProcessor
    from madmom.audio.spectrogram import (
        FilteredSpectrogramProcessor,
        LogarithmicSpectrogramProcessor,
        SpectrogramDifferenceProcessor,
    )
    from madmom.audio.stft import ShortTimeFourierTransformProcessor
    from madmom.processors import SequentialProcessor

    from . import _madmom_fast

    _madmom_fast.install()
    return SequentialProcessor((
        FramedSignalProcessor(frame_size=WIN, hop_size=HOP),
        ShortTimeFourierTransformProcessor(),
        FilteredSpectrogramProcessor(num_bands=24, fmin=30, fmax=17000, norm_filters=True),
        LogarithmicSpectrogramProcessor(mul=1, add=1),
        SpectrogramDifferenceProcessor(diff_ratio=0.5, positive_diffs=True, stack_diffs=np.hstack),
    ))


def features(y22: np.ndarray) -> np.ndarray:
    """(frames, 272) BeatNet input features of a mono float signal at 22.05 kHz."""
    from madmom.audio.signal import Signal

    signal = Signal(np.asarray(y22, dtype=np.float32), sample_rate=SAMPLE_RATE, num_channels=1)
    return np.asarray(_feature_processor()(signal), dtype=np.float32)


def activations(y22: np.ndarray, models: tuple[int, ...] = (1,)) -> np.ndarray:
    """(frames, 2) beat and downbeat activations at 50 fps, averaged over ``models``."""
    feats = features(y22)
    probs = np.mean([forward(feats, m) for m in models], axis=0)
    return np.ascontiguousarray(probs[:, :2], dtype=np.float32)
