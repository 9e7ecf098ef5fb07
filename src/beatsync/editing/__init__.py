"""Edit planning: beat map + clips + config -> edit decision list. Pure: no I/O, no media."""

from .plan import ClipInfo, plan
from .presets import PRESETS, resolve_config

__all__ = ["PRESETS", "ClipInfo", "plan", "resolve_config"]
