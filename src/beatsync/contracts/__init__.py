"""Pydantic models mirroring ``schemas/*.schema.json`` (the schemas are the source of truth;
``tests/unit/test_contracts.py`` fails when the two drift)."""

from ._base import describe_validation_error
from .beat_map import Bar, Beat, BeatMap, Section
from .edit import ClipRef, EditConfig, EditDecisionList, EditWarning, Shot, SongWindow, Transition

__all__ = ["Bar", "Beat", "BeatMap", "ClipRef", "EditConfig", "EditDecisionList", "EditWarning", "Section", "Shot",
           "SongWindow", "Transition", "describe_validation_error"]
