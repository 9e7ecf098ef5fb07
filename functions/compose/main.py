"""beatsync compose job (Cloud Run job, 4 vCPU / 8 GiB): the compose step of one job, or one task of a
parallel render (CLOUD_RUN_TASK_INDEX / CLOUD_RUN_TASK_COUNT), then the merge.

Not an HTTP function: a render can outlive any HTTP request, so compose runs as a Cloud Run job
execution (the analyze service starts one per attempt with the arguments ``compose-job JOB_ID``).
A thin adapter like the functions beside it: the container's entry point hands its arguments to the
shared command line (``beatsync compose-job``), which runs the step through the same job code the
local process runner uses. Run locally: `python functions/compose/main.py compose-job JOB_ID`.
"""

import sys

from beatsync.cli import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:] or ["compose-job", "--help"]))
