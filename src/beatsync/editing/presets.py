"""Named edit configs. A request names a preset and may override any field.

The presets follow the seed's descriptions. None turns on ``section_aware``: every cut of a
preset is a beat of its sync mode (density varies only by ``min_shot_duration``)."""

from __future__ import annotations

from typing import Any

from ..contracts import EditConfig, describe_validation_error
from ..contracts.edit import PRESET_NAMES
from ..errors import InvalidRequest

PRESETS: dict[str, dict[str, Any]] = {
    "music_video": {
        "description": "Every strong beat (strength >= 0.5) with 0.1 s fades, and a short zoom punch on strong "
                       "downbeats inside long shots. Every cut is on a strong beat (section_aware off).",
        "config": {"sync_mode": "strong_beats", "strength_threshold": 0.5, "transition_style": "fade",
                   "transition_duration": 0.1, "min_shot_duration": 0.4, "punch": True},
    },
    "fast_cuts": {
        "description": "Quick hard cuts on every beat: shots as short as 0.2 s, so every beat is cut up to "
                       "300 BPM (section_aware off).",
        "config": {"sync_mode": "every_beat", "transition_style": "cut", "transition_duration": 0.0,
                   "min_shot_duration": 0.2},
    },
    "cinematic": {
        "description": "Slower cuts on downbeats (shots of 1.5 s or more) with 0.4 s zoom transitions at 24 fps "
                       "(section_aware off).",
        "config": {"sync_mode": "downbeats", "transition_style": "zoom", "transition_duration": 0.4,
                   "output_fps": 24, "min_shot_duration": 1.5},
    },
}
assert tuple(PRESETS) == PRESET_NAMES, "schemas/edit_config.schema.json#/$defs/Preset lists the presets"

#: the edit used when a caller names no preset (the CLI's default, stated in its help)
DEFAULT_PRESET = "music_video"


def resolve_config(preset: str | None = None, overrides: dict[str, Any] | None = None, *,
                   names: dict[str, str] | None = None) -> EditConfig:
    """The preset's config (or the defaults) with ``overrides`` applied and validated. ``names`` maps a
    config field to what the caller calls it (a CLI flag) in error messages.

    A transition style given without a duration keeps the preset's duration if it has one,
    else gets the seed's 0.1 s (``fast_cuts`` + ``glitch`` is a 0.1 s glitch, not a hard cut)."""
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise InvalidRequest(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}", code="unknown_preset")
        values.update(PRESETS[preset]["config"])
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if "transition_style" in given and "transition_duration" not in given and not values.get("transition_duration"):
        values.pop("transition_duration", None)  # EditConfig gives a non-cut style the seed's 0.1 s
    values.update(given)
    try:
        return EditConfig(**values)
    except ValueError as exc:  # pydantic.ValidationError
        raise InvalidRequest(describe_validation_error(exc, names), code="invalid_config") from None
