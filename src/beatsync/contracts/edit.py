from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ._base import Model as _Model
from .schemas import load as _load


def _choices(name: str, schema: str = "edit_config") -> tuple[str, ...]:
    """A list of choices, from its one definition in ``schemas/{schema}.schema.json#/$defs/{name}``."""
    return tuple(_load(schema)["$defs"][name]["enum"])


SYNC_MODES = _choices("SyncMode")
TRANSITIONS = _choices("TransitionStyle")
OUTPUT_FORMATS = _choices("OutputFormat")
FITS = _choices("Fit")
PRESET_NAMES = _choices("Preset")
WARNING_CODES = _choices("WarningCode", "edl")
TIMELINE_FORMATS = _choices("TimelineFormat", "create_request")
#: the file extension of each timeline format (``.xml`` for fcp_xml, ...), from the same definition
TIMELINE_EXTENSIONS: dict[str, str] = dict(_load("create_request")["$defs"]["TimelineFormat"]["x-extensions"])
#: the frame rates a format that counts in SMPTE timecode can hold (formats not listed: any rate)
TIMELINE_TIMECODE_RATES: dict[str, tuple[int, ...]] = {
    f: tuple(r) for f, r in _load("create_request")["$defs"]["TimelineFormat"]["x-timecode-rates"].items()}


def timeline_rate_problem(fmt: str, fps: int) -> str | None:
    """Why a timeline format cannot hold an edit at ``fps`` frames per second, or None."""
    rates = TIMELINE_TIMECODE_RATES.get(fmt)
    if rates and fps not in rates:
        return (f"{fmt} timelines count in SMPTE timecode: the frame rate must be one of "
                f"{', '.join(map(str, rates))} (not {fps})")
    return None
SyncMode = Literal[SYNC_MODES]  # type: ignore[valid-type]
TransitionStyle = Literal[TRANSITIONS]  # type: ignore[valid-type]
OutputFormat = Literal[OUTPUT_FORMATS]  # type: ignore[valid-type]
Fit = Literal[FITS]  # type: ignore[valid-type]
PresetName = Literal[PRESET_NAMES]  # type: ignore[valid-type]
WarningCode = Literal[WARNING_CODES]  # type: ignore[valid-type]
TimelineFormat = Literal[TIMELINE_FORMATS]  # type: ignore[valid-type]
#: the seed's transition duration, for a style given without one
DEFAULT_TRANSITION_DURATION = 0.1


class EditConfig(_Model):
    sync_mode: SyncMode = "every_beat"
    strength_threshold: float = Field(0.5, ge=0, le=1)
    transition_style: TransitionStyle = "cut"
    transition_duration: float = Field(0.0, ge=0, le=2)
    output_resolution: str = Field("1920x1080", pattern=r"^[1-9][0-9]{1,3}x[1-9][0-9]{1,3}$")
    output_fps: int = Field(30, ge=15, le=60)
    output_format: OutputFormat = "mp4"
    fit: Fit = "fill"
    preview_only: bool = False
    preview_duration: float = Field(30.0, ge=5, le=120)
    min_shot_duration: float = Field(0.25, ge=0.1, le=10)
    section_aware: bool = False
    punch: bool = False

    @model_validator(mode="before")
    @classmethod
    def _seed_duration(cls, data: Any) -> Any:
        """A style other than cut given without a duration gets the seed's 0.1 s (0 means a hard cut)."""
        if isinstance(data, dict) and data.get("transition_duration") is None and data.get("transition_style", "cut") != "cut":
            data = {**data, "transition_duration": DEFAULT_TRANSITION_DURATION}
        return data

    @field_validator("output_resolution")
    @classmethod
    def _output_size(cls, value: str) -> str:
        """The output-size rule of schemas/edit_config.schema.json (``x-output-size``)."""
        from .schemas import output_size_problem, output_size_rule

        problem = output_size_problem(value, output_size_rule())
        if problem:
            raise ValueError(problem)
        return value

    @property
    def size(self) -> tuple[int, int]:
        """Output size, rounded down to multiples of 4 (4:2:0 chroma planes stay whole)."""
        w, h = (int(v) for v in self.output_resolution.split("x"))
        return max(16, w - w % 4), max(16, h - h % 4)


class SongWindow(_Model):
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    audio_hash: str


class ClipRef(_Model):
    index: int = Field(ge=0)
    name: str
    duration: float = Field(ge=0)


class EditWarning(_Model):
    code: WarningCode
    message: str


class Transition(_Model):
    style: TransitionStyle
    duration: float = Field(ge=0, le=2)


class Shot(_Model):
    index: int = Field(ge=0)
    clip: int = Field(ge=0)
    source_in: float = Field(ge=0)
    start_frame: int = Field(ge=0)
    end_frame: int = Field(ge=1)
    transition: Transition
    section: str
    motion: float = Field(ge=0, le=1)
    accents: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list)
    continues: bool = False

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame


class EditDecisionList(_Model):
    schema_version: Literal[1] = 1
    fps: int = Field(ge=15, le=60)
    width: int = Field(ge=16, le=7680)
    height: int = Field(ge=16, le=7680)
    fit: Fit
    output_format: OutputFormat
    song: SongWindow
    total_frames: int = Field(ge=1)
    clips: list[ClipRef] = Field(min_length=1)
    shots: list[Shot] = Field(min_length=1)
    warnings: list[EditWarning] = Field(default_factory=list)

    @property
    def cut_frames(self) -> list[int]:
        """Output frames where a new shot cuts in (a shot that continues the previous take is no cut)."""
        return [s.start_frame for s in self.shots[1:] if not s.continues]

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)
