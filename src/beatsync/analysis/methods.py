"""The analysis methods and the licences of their models (one list: CLI choices, settings, request
schemas), and the check a request or the settings pass. Light: nothing but the errors; the settings
import it without the rest of :mod:`beatsync.analysis`."""

from __future__ import annotations

from ..errors import InvalidRequest

#: the analysis methods, the default first (one list: CLI choices, settings, request schemas)
METHODS = ("beatnet", "librosa", "madmom", "hybrid")
DEFAULT_METHOD = "beatnet"
#: licence of the trained models each method runs (the code is BSD/ISC/MIT everywhere)
MODEL_LICENCES = {
    "beatnet": "CC-BY-4.0",  # BeatNet CRNN weights (attribution: analysis/models/BEATNET-LICENSE.md)
    "librosa": "none",  # no trained model
    "madmom": "CC-BY-NC-SA-4.0",  # madmom's downbeat RNNs: non-commercial
    "hybrid": "CC-BY-NC-SA-4.0",
}
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
