"""beatsync status function: Job status, cancel, list, logs, presets, transitions, health, API docs (/docs), and the
studio page (/studio) where BEATSYNC_STUDIO=1.

A thin adapter: functions-framework hands the request to the shared HTTP layer, which parses,
validates, calls one service function and maps errors to HTTP. Nothing is built at import time.
Run locally: `functions-framework --source functions/status/main.py --target status`.
"""

import functions_framework

from beatsync.bootstrap import bootstrap
from beatsync.http import dispatch, set_container_factory

ROUTES = ("meta", "docs", "status", "studio")  # studio: only with BEATSYNC_STUDIO=1

set_container_factory(bootstrap)  # the container is built on the first request, from the environment


@functions_framework.http
def status(request):
    return dispatch(request, ROUTES)
