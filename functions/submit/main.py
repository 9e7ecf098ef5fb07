"""beatsync submit function: POST /api/v1/beat-sync/analyze and /create: validate, store the job, start it;
and POST /api/v1/beat-sync/pubsub/push, the Pub/Sub push intake (a message becomes a create job).

A thin adapter: functions-framework hands the request to the shared HTTP layer, which parses,
validates, calls one service function and maps errors to HTTP. Nothing is built at import time.
Run locally: `functions-framework --source functions/submit/main.py --target submit`.
"""

import functions_framework

from beatsync.bootstrap import bootstrap
from beatsync.http import dispatch, set_container_factory

ROUTES = ("meta", "submit", "pubsub")

set_container_factory(bootstrap)  # the container is built on the first request, from the environment


@functions_framework.http
def submit(request):
    return dispatch(request, ROUTES)
