# beatsync on Google Cloud. Resources are split by concern:
#   apis.tf       the services this needs
#   iam.tf        one service account per component, least privilege
#   storage.tf    media bucket (lifecycle, CORS), access-log and function-source buckets
#   firestore.tf  job database, composite indexes of the job queries, TTL policy
#   tasks.tf      the webhook queue
#   secrets.tf    webhook signing key
#   registry.tf   Artifact Registry for the images
#   run.tf        analyze service and compose job (Cloud Run)
#   functions.tf  submit and status functions (Cloud Functions 2nd gen)
#   workflow.tf   the Workflows workflow from workflows/beat_sync.yaml
#   monitoring.tf log-based metrics, dashboard, alert policies
#   metrics.tf    the seed's job_count and job_duration (log-based metrics)
#   pubsub.tf     Pub/Sub intake (push, dead letter) and the job events topic

locals {
  labels = merge({ app = "beatsync", managed-by = "terraform" }, var.labels)

  image_base    = "${var.region}-docker.pkg.dev/${var.project_id}/${var.image_repository}"
  analyze_image = "${local.image_base}/analyze:${var.image_tag}"
  compose_image = "${local.image_base}/compose:${var.image_tag}"

  submit_name  = "${var.name_prefix}-submit"
  status_name  = "${var.name_prefix}-status"
  analyze_name = "${var.name_prefix}-analyze"
  compose_name = "${var.name_prefix}-compose"

  # settings every component reads (src/beatsync/settings.py)
  common_env = {
    BEATSYNC_BLOB_STORE            = "gcs"
    BEATSYNC_BUCKET                = google_storage_bucket.media.name
    BEATSYNC_JOB_STORE             = "firestore"
    BEATSYNC_FIRESTORE_COLLECTION  = var.firestore_collection
    BEATSYNC_PROJECT               = var.project_id
    BEATSYNC_REGION                = var.region
    BEATSYNC_ORCHESTRATOR          = "workflows"
    BEATSYNC_WORKFLOW              = local.workflow_name
    BEATSYNC_NOTIFIER              = "cloud_tasks"
    BEATSYNC_TASKS_QUEUE           = google_cloud_tasks_queue.webhooks.name
    BEATSYNC_COMPOSE_RUNNER        = "cloud_run_job"
    BEATSYNC_COMPOSE_JOB           = local.compose_name
    BEATSYNC_ALLOWED_HOSTS         = join(",", var.allowed_hosts)
    BEATSYNC_MAX_INPUT_BYTES       = tostring(var.max_input_bytes)
    BEATSYNC_MAX_AUDIO_DURATION    = tostring(var.max_audio_duration_seconds)
    BEATSYNC_ANALYSIS_METHOD       = var.analysis_method
    BEATSYNC_JOB_TTL_DAYS          = tostring(var.job_ttl_days)
    BEATSYNC_RENDER_TASK_SECONDS   = tostring(var.render_task_seconds)
    BEATSYNC_RENDER_TARGET_SECONDS = tostring(var.render_target_seconds)
    BEATSYNC_RENDER_MAX_TASKS      = tostring(var.render_max_tasks)
    # the analyze step starts the compose execution before the plan (docs/parallel-render.md)
    BEATSYNC_COMPOSE_EARLY_START = var.compose_early_start ? "1" : "0"

    # madmom's models are non-commercial: the madmom/hybrid methods run only when this is "1"
    BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS = var.allow_noncommercial_models ? "1" : "0"

    BEATSYNC_EVENT_PUBLISHER = "pubsub"
    # the only topic a create request's callback_topic may name: the accounts may publish nowhere
    # else (terraform/pubsub.tf), so any other is refused at submit
    BEATSYNC_EVENT_TOPICS = google_pubsub_topic.events.id
  }

  # components that end jobs queue webhooks, whose tasks carry the tasks account's OIDC identity
  enqueuer_env = merge(local.common_env, {
    BEATSYNC_TASKS_SERVICE_ACCOUNT = google_service_account.this["tasks"].email
  })

  workflow_name = var.name_prefix
}

data "google_project" "this" {
  project_id = var.project_id
}
