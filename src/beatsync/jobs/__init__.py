"""Jobs: the model and its legal status changes (``model``), the service behind the routes
(``service``) and the steps the orchestrators run (``steps``). Import-light: no numpy / librosa / av."""

from .model import TERMINAL, IllegalTransition, Job, JobError, JobStatus, new_job

__all__ = ["TERMINAL", "IllegalTransition", "Job", "JobError", "JobStatus", "new_job"]
