"""The analysis methods and the licences of their models (one list: CLI choices, settings, request
schemas), and the check a request or the settings pass. Light: nothing but the errors; the settings
import it without the rest of :mod:`beatsync.analysis`."""

from __future__ import annotations

from ..errors import InvalidRequest

#: the analysis methods, the default first (one list: CLI choices, settings, request schemas)
METHODS = ("beatnet", "librosa", "madmom", "hybrid")
DEFAULT_METHOD = "beatnet"
#: the BeatNet networks the ``beatnet`` method runs (ids of :data:`beatnet.MODEL_IDS`): model 1
#: ("GTZAN out") alone, the only one with a held-out score here (benchmarks/beat_accuracy.py)
BEATNET_MODELS = (1,)
#: every trained model a method can load, with its licence (one place; the code is BSD/ISC/MIT everywhere)
MODEL_FILE_LICENCES = {
    # BeatNet CRNN weights, analysis/models/beatnet_crnn.npz (attribution: analysis/models/BEATNET-LICENSE.md)
    "beatnet-1": "CC-BY-4.0", "beatnet-2": "CC-BY-4.0", "beatnet-3": "CC-BY-4.0",
    "madmom-downbeats": "CC-BY-NC-SA-4.0",  # madmom's downbeat RNN ensemble: non-commercial
}
#: the trained models each method loads at run time (librosa: none)
MODELS_OF_METHOD = {
    "beatnet": tuple(f"beatnet-{m}" for m in BEATNET_MODELS),
    "librosa": (),
    "madmom": ("madmom-downbeats",),
    "hybrid": ("madmom-downbeats",),
}


def _licence(method: str) -> str:
    licences = {MODEL_FILE_LICENCES[m] for m in MODELS_OF_METHOD[method]}
    if len(licences) > 1:  # a method mixing licences would need the most restrictive one stated
        raise ValueError(f"{method} loads models under several licences: {sorted(licences)}")
    return licences.pop() if licences else "none"


#: licence of the trained models each method runs ("none": no trained model)
MODEL_LICENCES = {m: _licence(m) for m in METHODS}
#: methods whose models may not be used commercially: only with BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS=1
NONCOMMERCIAL_METHODS = frozenset(m for m, lic in MODEL_LICENCES.items() if "-NC" in lic)

def check_method(method: str, allow_noncommercial: bool = False) -> None:
    """Raise :class:`InvalidRequest` (400) for an unknown method, or for one whose models are
    licensed for non-commercial use only unless the operator acknowledged that licence."""
    if method not in METHODS:
        raise InvalidRequest(f"unknown analysis method {method!r}; use one of {', '.join(METHODS)}",
                             code="invalid_method")
    if method in NONCOMMERCIAL_METHODS and not allow_noncommercial:
        raise InvalidRequest(
            f"analysis method {method!r} runs madmom's models, licensed {MODEL_LICENCES[method]} (non-commercial "
            f"use only); the operator must set BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS=1 to acknowledge that licence. "
            f"Commercially usable methods: {', '.join(m for m in METHODS if m not in NONCOMMERCIAL_METHODS)}",
            code="noncommercial_model", details={"method": method, "model_licence": MODEL_LICENCES[method]})
