"""beatsync analyze service (Cloud Run): the workflow's analyze step (POST /internal/analyze
{"job_id"}) and its control calls (begin, state, compose start/poll/stop, end, console submit).

A thin adapter: functions-framework hands the request to the shared HTTP layer, which parses,
validates, calls one service function and maps errors to HTTP. Nothing is built at import time.
Run locally: `functions-framework --source functions/analyze/main.py --target analyze`.
"""

import functions_framework

from beatsync.bootstrap import bootstrap
from beatsync.http import dispatch, set_container_factory

ROUTES = ("meta", "analyze", "control")

set_container_factory(bootstrap)  # the container is built on the first request, from the environment


@functions_framework.http
def analyze(request):
    return dispatch(request, ROUTES)
