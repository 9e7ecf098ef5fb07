"""Least privilege, proven: every deployed component (each function, the analyze service, the
compose job, the workflow) is exercised through its own entry (its routes, its step) with the
store and queue ports recorded; each recorded operation needs the IAM permissions its cloud adapter
declares (``PERMISSIONS`` next to the adapter methods); those needs are checked against the
permissions of the predefined roles (tests/fixtures/iam_roles.json, from Google's IAM
documentation) that terraform/ grants that component's service account, on the resource each
grant is on (project, bucket with an optional object-name prefix condition, queue, secret,
service account, Cloud Run service or job, Pub/Sub topic). Every grant must be needed: removing any
one of them makes the check fail (shown below, one removal at a time).

Pub/Sub is exercised too: the submit function takes a push delivery (a job) and an unprocessable
one (published to the dead-letter topic), and the create requests name the events topic as their
``callback_topic``, so the components that start and end jobs publish their events there; a
publish needs ``pubsub.topics.publish`` on the topic it went to (the exercise's topic names map to
Terraform's topics through the settings that name them: ``TOPICS``)."""

from __future__ import annotations

import base64
import io
import json
import re

import functions_framework
import pytest

from beatsync.adapters.analytics import FirestoreAnalytics
from beatsync.adapters.cloud_run_jobs import CloudRunJobRunner
from beatsync.adapters.cloud_tasks import CloudTasksNotifier
from beatsync.adapters.firestore_jobs import FirestoreJobStore
from beatsync.adapters.gcs import GcsBlobStore
from beatsync.adapters.pubsub import PubSubPublisher
from beatsync.adapters.workflows import WorkflowsOrchestrator
from beatsync.bootstrap import bootstrap
from beatsync.http import set_container
from beatsync.jobs import steps
from beatsync.ports import Analytics, BlobStore, ComposeRunner, EventPublisher, JobStore, Notifier, Orchestrator
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.deploy import components, function_groups, grants, resources, serves
from tests.suites.service import RecordingOrchestrator, create_body
from tests.unit.test_auth_and_limits import google  # noqa: F401  (certificate server fixture)

ROLES = {k: set(v["permissions"]) for k, v in json.loads((ROOT / "tests" / "fixtures" / "iam_roles.json")
                                                          .read_text()).items() if not k.startswith("_")}
API = "/api/v1/beat-sync"

#: port -> (the setting that picks its adapter, {setting value: cloud adapter}, the port's ABC)
PORTS = {
    "blobs": ("BEATSYNC_BLOB_STORE", {"gcs": GcsBlobStore}, BlobStore),
    "jobs": ("BEATSYNC_JOB_STORE", {"firestore": FirestoreJobStore}, JobStore),
    "notifier": ("BEATSYNC_NOTIFIER", {"cloud_tasks": CloudTasksNotifier}, Notifier),
    "orchestrator": ("BEATSYNC_ORCHESTRATOR", {"workflows": WorkflowsOrchestrator}, Orchestrator),
    "runner": ("BEATSYNC_COMPOSE_RUNNER", {"cloud_run_job": CloudRunJobRunner}, ComposeRunner),
    "events": ("BEATSYNC_EVENT_PUBLISHER", {"pubsub": PubSubPublisher}, EventPublisher),
    # the analytics live beside the jobs: Firestore with a Firestore job store (bootstrap.analytics)
    "analytics": ("BEATSYNC_JOB_STORE", {"firestore": FirestoreAnalytics}, Analytics),
}
PROJECT = "demo-beatsync"
DLQ = f"projects/{PROJECT}/topics/beat-sync-requests-dead-letter"
EVENTS = f"projects/{PROJECT}/topics/beatsync-events"
#: the exercise's topics -> the setting that names each (its Terraform value names the topic resource)
TOPICS = {DLQ: "BEATSYNC_PUBSUB_DEAD_LETTER_TOPIC", EVENTS: "BEATSYNC_EVENT_TOPICS"}
AUDIENCE = f"https://asia-southeast1-{PROJECT}.cloudfunctions.net/beatsync-submit"
PUSHER = f"beatsync-pubsub-push@{PROJECT}.iam.gserviceaccount.com"
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/beat-sync-requests-push"


class Recorder:
    """Passes every call to the real adapter and records ``(port, method, key)`` of the port's
    operations (``key``: the object key of blob operations, the topic of a publish)."""

    def __init__(self, port: str, target, log: set):
        self._port, self._target, self._log = port, target, log
        self._ops = set(PORTS[port][2].__abstractmethods__) | {"signed_url", "size", "put_file", "get_file"}

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if name not in self._ops or not callable(attr):
            return attr

        def call(*args, **kwargs):
            key = None
            if self._port == "blobs" and args and isinstance(args[0], str):
                key = args[0]
            if self._port == "events":
                key = args[0] if args else kwargs["topic"]
            self._log.add((self._port, name, key))
            return attr(*args, **kwargs)

        return call


class RecordingRunner(ComposeRunner):
    """The analyze service's compose runner as a recorder: the compose job is exercised on its own
    below (its own container, its own records), so the attempt is not started twice."""

    def start(self, job_id, tasks=1):
        return f"recorded/{job_id}"

    def state(self, handle):
        return "running"

    def stop(self, handle):
        pass


def _client(name):
    return functions_framework.create_app(target=name, source=str(ROOT / "functions" / name / "main.py")).test_client()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, media, google):  # noqa: F811
    """What each component does to the stores and queues, exercising all its routes and its step."""
    from tests.servers import webhook_receiver

    receiver = webhook_receiver()
    try:
        yield _exercise(tmp_path_factory, media, receiver, google)
    finally:
        receiver.close()


def _push(client, google, body=None, message_id="m-1", raw=None):  # noqa: F811
    data = raw if raw is not None else json.dumps(body).encode()
    env = {"message": {"data": base64.b64encode(data).decode(), "messageId": message_id, "attributes": {}},
           "subscription": SUBSCRIPTION}
    r = client.post(f"{API}/pubsub/push", json=env,
                    headers={"Authorization": f"Bearer {google.token(email=PUSHER, aud=AUDIENCE)}"})
    assert r.status_code == 200, r.json
    return r.json


def _exercise(tmp_path_factory, media, receiver, google):  # noqa: F811
    tmp = tmp_path_factory.mktemp("perm")
    settings = Settings.from_env({}, data_dir=tmp / "data", allowed_hosts=f"{media.host},{receiver.host}",
                                 sync_wait=0.05, analysis_method="librosa", project=PROJECT,
                                 event_publisher="memory", event_topics=EVENTS, pubsub_dead_letter_topic=DLQ,
                                 pubsub_push_audience=AUDIENCE, pubsub_push_service_account=PUSHER,
                                 id_token_certs_url=google.url + "/certs")
    base = bootstrap(settings, orchestrator=RecordingOrchestrator())
    real = {"blobs": base.blobs, "jobs": base.jobs, "notifier": base.notifier, "orchestrator": base.orchestrator,
            "events": base.events, "analytics": base.analytics, "runner": RecordingRunner()}
    logs: dict[str, set] = {name: set() for name in ("submit", "status", "analyze", "compose")}

    def use(component):
        c = bootstrap(settings, **{p: Recorder(p, real[p], logs[component]) for p in
                                   ("blobs", "jobs", "notifier", "orchestrator", "events", "analytics")})
        c._overrides["runner"] = Recorder("runner", real["runner"], logs[component])
        set_container(c)
        return c

    submit, status, analyze = _client("submit"), _client("status"), _client("analyze")
    try:
        use("submit")
        # the create requests want their events on the events topic (any other topic is refused)
        ids = [submit.post(f"{API}/create", json=create_body(media, receiver, callback_topic=EVENTS)).json["job_id"]
               for _ in range(2)]
        # the Pub/Sub intake: a message becomes a job; one that can never succeed is dead-lettered
        assert _push(submit, google, create_body(media, callback_topic=EVENTS))["created"]
        assert _push(submit, google, raw=b"not json", message_id="m-2")["dead_lettered"]
        r = submit.post(f"{API}/analyze", json={"audio_url": f"{media.url}/song.wav", "method": "librosa"})
        assert r.status_code in (200, 202), r.json
        ids.append(r.json["job_id"])
        song = (media.root / "song.wav").read_bytes()
        r = submit.post(f"{API}/analyze", data={"audio_file": (io.BytesIO(song), "song.wav"), "method": "librosa"},
                        content_type="multipart/form-data")
        assert r.status_code in (200, 202), r.json
        job1, job2, job3 = ids

        use("analyze")

        def call(path, **body):
            r = analyze.post(path, json=body)
            assert r.status_code == 200, (path, r.json)
            return r.json

        for job in (job1, job2):
            call("/internal/begin", job_id=job)
            call("/internal/analyze", job_id=job)
        call("/internal/analyze", job_id=job3)
        handle = call("/internal/compose/start", job_id=job1, attempt=1)["handle"]
        call("/internal/compose/poll", job_id=job1, handle=handle)
        call("/internal/state", job_id=job1)
        other = call("/internal/compose/start", job_id=job2, attempt=1)["handle"]
        call("/internal/compose/stop", job_id=job2, handle=other)
        console = call("/internal/submit", request=create_body(media, receiver, callback_topic=EVENTS),
                       execution_id="e-1")["job_id"]
        call("/internal/end", job_id=console, status="failed", code="workflow_failed", message="test")
        # the scheduled sweep: an end a killed instance left pending (the terminal write only) is finished
        use("submit")
        pending = submit.post(f"{API}/create", json=create_body(media, receiver, callback_topic=EVENTS)).json["job_id"]
        real["jobs"].transition(pending, "failed", error={"code": "internal_error", "message": "killed"})
        use("analyze")
        assert call("/internal/sweep", older_than_seconds=0)["finished"] == 1
        assert not real["jobs"].get(pending).end_pending

        # the compose job: `beatsync compose-job JOB_ID` runs this step in its own container
        assert steps.run_compose(use("compose"), job1)["status"] == "completed"

        use("status")
        for path in (f"{API}/create/{job1}", f"{API}/analyze/{job3}", f"{API}/jobs", f"{API}/jobs/{job1}/logs",
                     f"{API}/presets", f"{API}/transitions", f"{API}/admin/stats", "/health", "/", "/openapi.json"):
            assert status.get(path).status_code == 200, path
        assert base.blobs.list(f"outputs/{job2}/")  # partial outputs, which cancel removes
        r = status.delete(f"{API}/create/{job2}")
        assert r.status_code == 200 and r.json["success"], r.json
        assert base.blobs.list(f"outputs/{job2}/") == []
        # each job that started published its events: processing, then how it ended
        events = [(json.loads(m["data"])["job_id"], m["attributes"]["status"]) for m in base.events.on(EVENTS)]
        assert {(job1, "completed"), (job2, "cancelled"), (console, "failed")} <= set(events), events
        assert {m["attributes"]["beatsync_error_code"] for m in base.events.on(DLQ)} == {"invalid_message"}
    finally:
        set_container(None)
    return logs


def _adapter(component: dict, port: str):
    setting, cloud, _ = PORTS[port]
    value = component["env"].get(setting)
    assert value in cloud, f"{setting}={value!r}: not a cloud adapter"
    return cloud[value]


def _resolve(component: dict, on: str) -> str | None:
    """The resource a declared permission target names, for this component (None: not used here)."""
    if on == "self":
        return f"account:{component['account']}"
    if on == "tasks_account":
        return "account:tasks" if component["env"].get("BEATSYNC_TASKS_SERVICE_ACCOUNT") else None
    if on == "compose_account":
        return "account:compose"
    if on == "compose_job":
        return "job:compose"
    if on in ("object", "bucket"):
        return "bucket"
    return on  # project, queue, workflow


def _topic(component: dict, topic: str) -> str:
    """The Terraform topic (``topic:NAME``) a recorded publish went to: the exercise's topic is the
    value it gave a setting, and the component's Terraform environment names the topic resource
    behind that setting (a topic the deployment does not configure fails here)."""
    setting = TOPICS[topic]
    ref = component["env"].get(setting)
    assert ref is not None, f"{setting} is not in this component's environment (publishes to {topic})"
    m = re.fullmatch(r"\$\{google_pubsub_topic\.(\w+)\.(id|name)\}", ref)
    assert m, f"{setting}={ref}: not one topic of terraform/pubsub.tf"
    return "topic:" + m.group(1)


def needs(recorded) -> dict[str, set[tuple[str, str, str | None]]]:
    """``(permission, resource, object key)`` each component needs."""
    comps = components()
    out: dict[str, set] = {}
    for name, ops in recorded.items():
        comp = comps[name]
        need = {("logging.logEntries.create", "project", None)}  # structured log lines
        need |= {("secretmanager.versions.access", s, None) for s in comp["secrets"]}  # mounted secrets
        for port, method, key in ops:
            table = _adapter(comp, port).PERMISSIONS
            assert method in table, f"{_adapter(comp, port).__name__}.{method} declares no permissions"
            for perm, on in table[method]:
                resource = _topic(comp, key) if on == "topic" else _resolve(comp, on)
                if resource is not None:
                    need.add((perm, resource, key if on == "object" else None))
        out[name] = need
    # the workflow: its http calls to the control URL (the analyze service) carry its OIDC token;
    # sys.log writes log entries
    wf = comps["workflow"]
    yaml_text = (ROOT / "workflows" / "beat_sync.yaml").read_text()
    assert wf["env"]["BEATSYNC_CONTROL_URL"] == "${google_cloud_run_v2_service.analyze.uri}"
    need = set()
    if "type: OIDC" in yaml_text and "http.post" in yaml_text:
        need.add(("run.routes.invoke", "service:analyze", None))
    if "sys.log" in yaml_text:
        need.add(("logging.logEntries.create", "project", None))
    out["workflow"] = need
    if "scheduler" in comps:
        out["scheduler"] = scheduler_needs()
    if "build" in comps:
        out["build"] = build_needs()
    return out


def scheduler_needs() -> set[tuple[str, str, None]]:
    """The scheduled sweep: Cloud Scheduler posts to the analyze service's sweep route with the
    sweeper account's OIDC token (exercised above: the analyze service's records of /internal/sweep)."""
    http = resources("google_cloud_scheduler_job")["end_pending_sweep"]["http_target"][0]
    assert http["uri"] == "${google_cloud_run_v2_service.analyze.uri}/internal/sweep", http["uri"]
    assert serves(function_groups("analyze"), http["http_method"], "/internal/sweep")
    assert http["oidc_token"][0]["audience"] == "${google_cloud_run_v2_service.analyze.uri}"
    return {("run.routes.invoke", "service:analyze", None)}


def build_needs() -> set[tuple[str, str, None]]:
    """What cloudbuild.yaml does as the build account: pull the layer cache, push the images by
    commit, deploy them to the analyze service and the compose job (acting as their accounts), log."""
    import yaml

    doc = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    repos = {"${_REPOSITORY}": "repository:images", "${_CACHE_REPOSITORY}": "repository:build_cache"}
    need = {("logging.logEntries.create", "project", None)}
    for step in doc["steps"]:
        text = " ".join(str(a) for a in step.get("args", []))
        for ref, repo in repos.items():
            if f"push \"${{_REGION}}-docker.pkg.dev/$PROJECT_ID/{ref}/" in text:
                need.add(("artifactregistry.repositories.uploadArtifacts", repo, None))
            if f"pull \"${{_REGION}}-docker.pkg.dev/$PROJECT_ID/{ref}/" in text or f"--cache-from=${{_REGION}}-docker.pkg.dev/$PROJECT_ID/{ref}/" in text:
                need.add(("artifactregistry.repositories.downloadArtifacts", repo, None))
        if step.get("entrypoint") == "gcloud" and step["args"][:3] == ["run", "services", "update"]:
            assert step["args"][3] == "${_NAME_PREFIX}-analyze", step["args"]
            need |= {("run.services.get", "service:analyze", None), ("run.services.update", "service:analyze", None),
                     ("iam.serviceAccounts.actAs", "account:analyze", None)}
        if step.get("entrypoint") == "gcloud" and step["args"][:3] == ["run", "jobs", "update"]:
            assert step["args"][3] == "${_NAME_PREFIX}-compose", step["args"]
            need |= {("run.jobs.get", "job:compose", None), ("run.jobs.update", "job:compose", None),
                     ("iam.serviceAccounts.actAs", "account:compose", None)}
    return need


def _covers(grant: dict, perm: str, resource: str, key: str | None) -> bool:
    if perm not in ROLES[grant["role"]]:
        return False
    if grant["on"] != "project" and grant["on"] != resource:
        return False
    if grant["prefix"] is not None:  # an IAM condition on object names: objects under the prefix only
        return key is not None and key.startswith(grant["prefix"])
    return True


def unmet(all_needs, grant_list) -> list[tuple[str, str, str, str | None]]:
    accounts = {name: comp["account"] for name, comp in components().items()}
    missing = []
    for name, need in all_needs.items():
        mine = [g for g in grant_list if g["account"] == accounts[name]]
        for perm, resource, key in sorted(need, key=str):
            if not any(_covers(g, perm, resource, key) for g in mine):
                missing.append((name, perm, resource, key))
    return missing


def test_every_cloud_adapter_declares_the_permissions_of_each_operation():
    for port, (_, cloud, abc_) in PORTS.items():
        for adapter in cloud.values():
            assert set(abc_.__abstractmethods__) <= set(adapter.PERMISSIONS), adapter.__name__
            for method, perms in adapter.PERMISSIONS.items():
                assert hasattr(adapter, method) and perms, (adapter.__name__, method)
                assert all(on in ("object", "bucket", "project", "queue", "workflow", "self", "tasks_account",
                                  "compose_account", "compose_job", "topic") for _, on in perms)


def test_every_granted_role_is_in_the_role_table():
    roles = {g["role"] for g in grants()}
    missing = roles - set(ROLES)
    assert not missing, f"add these roles with their permissions to tests/fixtures/iam_roles.json: {missing}"
    # and the check notices a role the table does not know
    with pytest.raises(KeyError):
        _covers({**grants()[0], "role": "roles/storage.admin"}, "storage.objects.get", "bucket", "x")


def test_each_component_has_the_permissions_its_routes_and_steps_need(recorded):
    all_needs = needs(recorded)
    assert set(all_needs) == {"submit", "status", "analyze", "compose", "workflow", "build", "scheduler"}
    assert ("artifactregistry.repositories.uploadArtifacts", "repository:images", None) in all_needs["build"]
    # the exercise reached the operations that matter
    assert ("storage.objects.delete", "bucket") in {(p, r) for p, r, _ in all_needs["status"]}  # cancel
    assert ("workflows.executions.create", "workflow", None) in all_needs["submit"]
    assert ("run.jobs.runWithOverrides", "job:compose", None) in all_needs["analyze"]
    assert ("cloudtasks.tasks.create", "queue", None) in all_needs["compose"]
    # Pub/Sub: the intake dead-letters; the components that start and end jobs publish their events
    assert ("pubsub.topics.publish", "topic:dead_letter", None) in all_needs["submit"]
    for name in ("status", "analyze", "compose"):
        assert ("pubsub.topics.publish", "topic:events", None) in all_needs[name], name
    assert not any(p == "pubsub.topics.publish" and r == "topic:events" for p, r, _ in all_needs["submit"])
    # the analytics: each component that ends jobs counts them, the admin stats read the days
    for name in ("status", "analyze", "compose"):
        assert ("analytics", "record", None) in recorded[name], name
    assert ("analytics", "days", None) in recorded["status"]
    assert unmet(all_needs, grants()) == []


def test_cancel_deletes_outputs_only_through_the_outputs_prefix_grant(recorded):
    all_needs = needs(recorded)
    deletes = {k for p, _, k in all_needs["status"] if p == "storage.objects.delete"}
    assert deletes and all(k.startswith(("outputs/", "temp/", "inputs/")) for k in deletes)
    conds = [g for g in grants() if g["account"] == "status" and g["prefix"]]
    assert sorted(g["prefix"] for g in conds) == ["inputs/", "outputs/", "temp/"]
    assert all(g["role"] == "roles/storage.objectUser" for g in conds)
    # the status function's unconditional storage role cannot delete
    (plain,) = [g for g in grants() if g["account"] == "status" and g["on"] == "bucket" and not g["prefix"]]
    assert "storage.objects.delete" not in ROLES[plain["role"]]


def test_removing_any_one_grant_fails_the_check(recorded):
    """Each grant is needed (least privilege) and the check sees it go (the demonstration)."""
    all_needs = needs(recorded)
    all_grants = grants()
    assert len(all_grants) >= 25
    for i, g in enumerate(all_grants):
        missing = unmet(all_needs, all_grants[:i] + all_grants[i + 1:])
        assert missing, f"{g['id']} ({g['role']}) is not needed by any operation"
    # e.g. without the conditional grant, cancel's deletion under outputs/ is unmet
    without = [g for g in all_grants if not (g["account"] == "status" and g["prefix"])]
    assert any(m[0] == "status" and m[1] == "storage.objects.delete" for m in unmet(all_needs, without))


def test_the_workflow_and_the_sweep_alone_invoke_the_analyze_service():
    invokers = resources("google_cloud_run_v2_service_iam_member")
    assert sorted(g["account"] for g in grants() if g["on"] == "service:analyze" and g["role"] == "roles/run.invoker") \
        == ["flow", "sweeper"]
    assert [k for k, v in invokers.items() if v["role"] == "roles/run.invoker"] == ["invokes_analyze"]
    assert invokers["invokes_analyze"]["for_each"] == '${toset(["flow", "sweeper"])}'
    # the sweeper account has that grant and nothing else
    assert [(g["role"], g["on"]) for g in grants() if g["account"] == "sweeper"] == [("roles/run.invoker",
                                                                                       "service:analyze")]
