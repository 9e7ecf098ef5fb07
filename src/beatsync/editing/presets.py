"""Named edit configs. A request names a preset and may override any field."""

from __future__ import annotations

from typing import Any

from ..contracts import EditConfig, describe_validation_error
from ..errors import InvalidRequest

PRESETS: dict[str, dict[str, Any]] = {
    # cuts on the strong beats, short crossfades: a general-purpose music video
    "music_video": {
        "description": "Cuts on strong beats with short crossfades; denser in choruses and drops.",
        "config": {"sync_mode": "strong_beats", "strength_threshold": 0.5, "transition_style": "fade",
                   "transition_duration": 0.15, "min_shot_duration": 0.5},
    },
    # every beat, hard cuts, quick shots: high-energy edits
    "fast_cuts": {
        "description": "A hard cut on every beat, shots as short as 0.25 s.",
        "config": {"sync_mode": "every_beat", "transition_style": "cut", "transition_duration": 0.0,
                   "min_shot_duration": 0.25},
    },
    # downbeats only, long dissolves, film frame rate
    "cinematic": {
        "description": "Cuts on downbeats with long dissolves at 24 fps.",
        "config": {"sync_mode": "downbeats", "transition_style": "fade", "transition_duration": 0.8,
                   "output_fps": 24, "min_shot_duration": 1.5},
    },
}

#: the edit used when a caller names no preset (the CLI's default, stated in its help)
DEFAULT_PRESET = "music_video"


def resolve_config(preset: str | None = None, overrides: dict[str, Any] | None = None, *,
                   names: dict[str, str] | None = None) -> EditConfig:
    """The preset's config (or the defaults) with ``overrides`` applied and validated. ``names`` maps a
    config field to what the caller calls it (a CLI flag) in error messages."""
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise InvalidRequest(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}", code="unknown_preset")
        values.update(PRESETS[preset]["config"])
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return EditConfig(**values)
    except ValueError as exc:  # pydantic.ValidationError
        raise InvalidRequest(describe_validation_error(exc, names), code="invalid_config") from None
