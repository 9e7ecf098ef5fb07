"""beatsync compose function: POST /internal/compose {"job_id"}: the workflow's compose step (Cloud Run, 4 vCPU / 8 GiB).

A thin adapter: functions-framework hands the request to the shared HTTP layer, which parses,
validates, calls one service function and maps errors to HTTP. Nothing is built at import time.
Run locally: `functions-framework --source functions/compose/main.py --target compose`.
"""

import functions_framework

from beatsync.http import dispatch

ROUTES = ("meta", "compose")


@functions_framework.http
def compose(request):
    return dispatch(request, ROUTES)
