"""Jobs: the model, its legal status changes, and (to come) the service functions.
Import-light: no numpy / librosa / av."""

from .model import TERMINAL, IllegalTransition, Job, JobError, JobStatus, new_job

__all__ = ["TERMINAL", "IllegalTransition", "Job", "JobError", "JobStatus", "new_job"]
