# One service account per component. No primitive roles; storage grants are on the bucket only.
# Firestore has no per-collection IAM, so datastore.user is granted on the project to the
# components that write jobs (status only reads and cancels, which is a write too).

locals {
  components = {
    submit  = "beatsync submit function"
    status  = "beatsync status function"
    analyze = "beatsync analyze service"
    compose = "beatsync compose job"
    flow    = "beatsync workflow"
    tasks   = "beatsync webhook tasks (OIDC identity)"
    sweeper = "beatsync end-pending sweep (Cloud Scheduler OIDC identity)"
  }

  # project-level roles, by component
  project_roles = {
    "submit-datastore"  = { sa = "submit", role = "roles/datastore.user" }
    "submit-workflows"  = { sa = "submit", role = "roles/workflows.invoker" }
    "status-datastore"  = { sa = "status", role = "roles/datastore.user" }
    "status-workflows"  = { sa = "status", role = "roles/workflows.invoker" }
    "analyze-datastore" = { sa = "analyze", role = "roles/datastore.user" }
    "compose-datastore" = { sa = "compose", role = "roles/datastore.user" }
    "flow-logging"      = { sa = "flow", role = "roles/logging.logWriter" }
    "submit-logging"    = { sa = "submit", role = "roles/logging.logWriter" }
    "status-logging"    = { sa = "status", role = "roles/logging.logWriter" }
    "analyze-logging"   = { sa = "analyze", role = "roles/logging.logWriter" }
    "compose-logging"   = { sa = "compose", role = "roles/logging.logWriter" }
  }

  # bucket-scoped storage: read+write objects, never bucket IAM or settings
  bucket_roles = {
    submit  = "roles/storage.objectUser"
    status  = "roles/storage.objectViewer"
    analyze = "roles/storage.objectUser"
    compose = "roles/storage.objectUser"
  }

  # cancel (status) removes a cancelled job's partial outputs, its parallel render's segments and
  # its fetched inputs: object writes under outputs/, temp/ and inputs/ only
  conditional_bucket_roles = {
    status-outputs = {
      sa        = "status"
      role      = "roles/storage.objectUser"
      prefix    = "outputs/"
      title     = "outputs-only"
      rationale = "cancel deletes outputs/JOB_ID/*"
    }
    status-temp = {
      sa        = "status"
      role      = "roles/storage.objectUser"
      prefix    = "temp/"
      title     = "temp-only"
      rationale = "cancel deletes temp/JOB_ID/* (parallel render segments)"
    }
    status-inputs = {
      sa        = "status"
      role      = "roles/storage.objectUser"
      prefix    = "inputs/"
      title     = "inputs-only"
      rationale = "cancel deletes the ended job's fetched inputs (inputs/*/JOB_ID/*)"
    }
  }

  # components that sign URLs without a key file sign through IAM signBlob on themselves (status
  # views completed jobs; compose completes them, and their webhook carries the links)
  url_signers = toset(["status", "compose"])
  # components that end jobs, and so queue webhooks
  enqueuers = toset(["status", "analyze", "compose"])
}

resource "google_service_account" "this" {
  for_each = local.components

  project      = var.project_id
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = each.value
}

resource "google_project_iam_member" "this" {
  for_each = local.project_roles

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.this[each.value.sa].email}"
}

resource "google_storage_bucket_iam_member" "media" {
  for_each = local.bucket_roles

  bucket = google_storage_bucket.media.name
  role   = each.value
  member = "serviceAccount:${google_service_account.this[each.key].email}"
}

resource "google_service_account_iam_member" "sign_urls" {
  for_each = local.url_signers

  service_account_id = google_service_account.this[each.value].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.this[each.value].email}"
}

resource "google_cloud_tasks_queue_iam_member" "enqueue" {
  for_each = local.enqueuers

  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.webhooks.name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.this[each.value].email}"
}

# creating a task that carries the tasks account's OIDC token requires acting as it
resource "google_service_account_iam_member" "act_as_tasks" {
  for_each = local.enqueuers

  service_account_id = google_service_account.this["tasks"].name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.this[each.value].email}"
}

resource "google_secret_manager_secret_iam_member" "webhook_secret" {
  for_each = local.enqueuers

  project   = var.project_id
  secret_id = google_secret_manager_secret.webhook.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.this[each.value].email}"
}

# only the workflow calls the analyze service, and the scheduled end_pending sweep (scheduler.tf)
resource "google_cloud_run_v2_service_iam_member" "invokes_analyze" {
  for_each = toset(["flow", "sweeper"])

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.analyze.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.this[each.value].email}"
}

# the grants' earlier addresses (one resource each): moved, so that an apply renames them in place
# instead of destroying and creating the same binding in no fixed order
moved {
  from = google_cloud_run_v2_service_iam_member.flow_invokes_analyze
  to   = google_cloud_run_v2_service_iam_member.invokes_analyze["flow"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.sweeper_invokes_analyze
  to   = google_cloud_run_v2_service_iam_member.invokes_analyze["sweeper"]
}

# the analyze service starts, inspects and cancels compose executions (with the job id as argument)
resource "google_cloud_run_v2_job_iam_member" "analyze_runs_compose" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.compose.name
  role     = "roles/run.developer"
  member   = "serviceAccount:${google_service_account.this["analyze"].email}"
}

resource "google_service_account_iam_member" "analyze_acts_as_compose" {
  service_account_id = google_service_account.this["compose"].name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.this["analyze"].email}"
}

resource "google_storage_bucket_iam_member" "media_prefix" {
  for_each = local.conditional_bucket_roles

  bucket = google_storage_bucket.media.name
  role   = each.value.role
  member = "serviceAccount:${google_service_account.this[each.value.sa].email}"

  condition {
    title       = each.value.title
    description = each.value.rationale
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.media.name}/objects/${each.value.prefix}\")"
  }
}
