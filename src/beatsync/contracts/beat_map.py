from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ._base import Model as _Model

SectionName = Literal["intro", "verse", "chorus", "bridge", "build", "drop", "outro"]
Method = Literal["beatnet", "librosa", "madmom", "hybrid"]
#: licence of the trained models a method ran ("none": no trained model)
ModelLicence = Literal["CC-BY-4.0", "CC-BY-NC-SA-4.0", "none"]
#: the licence each method's models carry (equal to beatsync.analysis.MODEL_LICENCES; a test checks)
LICENCE_OF_METHOD = {"beatnet": "CC-BY-4.0", "librosa": "none", "madmom": "CC-BY-NC-SA-4.0",
                     "hybrid": "CC-BY-NC-SA-4.0"}


class Beat(_Model):
    index: int = Field(ge=0)
    time: float = Field(ge=0)
    frame: int = Field(ge=0)
    strength: float = Field(ge=0, le=1)
    is_downbeat: bool
    bar: int = Field(ge=-1)
    beat_in_bar: int = Field(ge=1, le=12)


class Bar(_Model):
    index: int = Field(ge=0)
    start_time: float = Field(ge=0)
    end_time: float = Field(ge=0)
    beat_index: int = Field(ge=0)
    num_beats: int = Field(ge=1)


class Section(_Model):
    name: SectionName
    start_time: float = Field(ge=0)
    end_time: float = Field(ge=0)
    energy: float = Field(ge=0, le=1)
    label: str = Field(pattern=r"^[A-Z]$")
    confidence: float = Field(ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _confidence_unknown(cls, data):
        """Sections stored before they had a confidence (a job in flight across a deploy) read with 1:
        the song's confidence then decides alone (:meth:`BeatMap.confidence_at`)."""
        if isinstance(data, dict) and "confidence" not in data:
            data = {**data, "confidence": 1.0}
        return data

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time


#: below this confidence the beat grid is not trusted (the edit cuts on downbeats only): two independent
#: trackers agree less than they do when one is at double or half the other's tempo (2/3); not fitted
LOW_CONFIDENCE = 0.5


class BeatMap(_Model):
    schema_version: Literal[1] = 1
    tempo: float = Field(ge=0)
    duration: float = Field(ge=0)
    fps: float = Field(gt=0)
    total_beats: int = Field(ge=0)
    beats_per_bar: int = Field(ge=0, le=12)
    time_signature: str = Field(pattern=r"^([0-9]{1,2}/4|none)$")
    confidence: float = Field(ge=0, le=1)
    beats: list[Beat]
    bars: list[Bar]
    sections: list[Section]
    detection_method: Method
    model_licence: ModelLicence
    processing_time_ms: float = Field(ge=0)
    audio_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    analyzer: str

    @model_validator(mode="before")
    @classmethod
    def _licence_from_method(cls, data):
        """Beat maps stored before ``model_licence`` existed (a job in flight across a deploy) read
        with the licence their method implies; every new map states it."""
        method = data.get("detection_method") if isinstance(data, dict) else None
        if method in LICENCE_OF_METHOD and "model_licence" not in data:
            data = {**data, "model_licence": LICENCE_OF_METHOD[method]}
        return data

    @property
    def downbeats(self) -> list[Beat]:
        return [b for b in self.beats if b.is_downbeat]

    def confidence_at(self, t: float) -> float:
        """The confidence of the beat grid at ``t``: the song's, or its section's where that is lower."""
        section = self.section_at(t)
        return min(self.confidence, section.confidence) if section is not None else self.confidence

    def section_at(self, t: float) -> Section | None:
        for s in self.sections:
            if s.start_time <= t < s.end_time:
                return s
        return self.sections[-1] if self.sections and t >= self.sections[-1].start_time else None

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)
