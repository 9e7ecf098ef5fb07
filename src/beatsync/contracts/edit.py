from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, field_validator

from ._base import Model as _Model

SyncMode = Literal["every_beat", "every_other", "strong_beats", "downbeats"]
TransitionStyle = Literal["cut", "fade", "zoom", "flash", "glitch", "slide"]
TRANSITIONS: tuple[str, ...] = ("cut", "fade", "zoom", "flash", "glitch", "slide")
OutputFormat = Literal["mp4", "webm"]
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
#: fill: scale and crop the centre; letterbox: scale to fit, pad; smart: crop that follows the subject
FitMode = Literal["fill", "letterbox", "smart"]
FITS: tuple[str, ...] = get_args(FitMode)


class EditConfig(_Model):
    sync_mode: SyncMode = "every_beat"
    strength_threshold: float = Field(0.5, ge=0, le=1)
    transition_style: TransitionStyle = "cut"
    transition_duration: float = Field(0.0, ge=0, le=2)
    output_resolution: str = Field("1920x1080", pattern=r"^[1-9][0-9]{1,3}x[1-9][0-9]{1,3}$")
    output_fps: int = Field(30, ge=15, le=60)
    output_format: OutputFormat = "mp4"
    fit: FitMode = "fill"
    preview_only: bool = False
    preview_duration: float = Field(30.0, ge=5, le=120)
    min_shot_duration: float = Field(0.4, ge=0.1, le=10)
    section_aware: bool = True

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

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame


class EditDecisionList(_Model):
    schema_version: Literal[1] = 1
    fps: int = Field(ge=15, le=60)
    width: int = Field(ge=16, le=7680)
    height: int = Field(ge=16, le=7680)
    fit: FitMode
    output_format: Literal["mp4", "webm"]
    song: SongWindow
    total_frames: int = Field(ge=1)
    clips: list[ClipRef] = Field(min_length=1)
    shots: list[Shot] = Field(min_length=1)

    @property
    def cut_frames(self) -> list[int]:
        return [s.start_frame for s in self.shots[1:]]

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)
