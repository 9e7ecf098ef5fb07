"""Pydantic models mirroring ``schemas/*.schema.json`` (the schemas are the source of truth;
``tests/unit/test_contracts.py`` fails when the two drift)."""

from .beat_map import Bar, Beat, BeatMap, Section

__all__ = ["Bar", "Beat", "BeatMap", "Section"]
