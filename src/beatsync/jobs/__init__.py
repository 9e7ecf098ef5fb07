"""Jobs, one way down: the service behind the routes (``service``) -> the steps the orchestrators
run (``steps``, ``parallel``: a render split into tasks) -> a job's life (``lifecycle``: ending,
cancelling, clean-up, audit lines, events), its inputs (``inputs``) and status documents
(``views``) -> the model and its legal status changes (``model``) and local retention (``storage``).
Blob keys come from :mod:`beatsync.keys`. Import-light: no numpy / librosa / av."""

from .model import TERMINAL, IllegalTransition, Job, JobError, JobStatus, new_job

__all__ = ["TERMINAL", "IllegalTransition", "Job", "JobError", "JobStatus", "new_job"]
