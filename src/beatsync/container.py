"""The :class:`Container` type: everything the service functions need, each adapter built on first
use by the builder :mod:`beatsync.bootstrap` hands it (the composition root; only entry points
import it). The job and HTTP code import this module for the type alone."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .settings import Settings

if TYPE_CHECKING:
    from .ports import Analytics, BlobStore, EventPublisher, JobStore, Notifier, Orchestrator


@dataclass
class Container:
    """Everything the service functions need. Adapters are built on first use by ``build(name, self)``
    (:func:`beatsync.bootstrap.build`); ``_overrides`` holds those built or given (tests)."""

    settings: Settings
    _overrides: dict = field(default_factory=dict, repr=False)
    build: Callable[[str, "Container"], Any] | None = field(default=None, repr=False)

    def _get(self, name: str) -> Any:
        if name not in self._overrides:
            if self.build is None:
                raise LookupError(f"the container has no {name} and nothing to build it with")
            self._overrides[name] = self.build(name, self)
        return self._overrides[name]

    @property
    def blobs(self) -> BlobStore:
        return self._get("blobs")

    @property
    def jobs(self) -> JobStore:
        return self._get("jobs")

    @property
    def notifier(self) -> Notifier:
        return self._get("notifier")

    @property
    def orchestrator(self) -> Orchestrator:
        return self._get("orchestrator")

    @property
    def analytics(self) -> Analytics:
        return self._get("analytics")

    @property
    def events(self) -> EventPublisher | None:
        return self._get("events")

    @property
    def runner(self):
        return self._get("runner")

    @functools.cached_property
    def fetch_policy(self):
        return self._get("fetch_policy")
