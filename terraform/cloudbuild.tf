# The Cloud Build pipeline (cloudbuild.yaml, docs/pipeline.md): a trigger on pushes to main that
# runs as its own service account, with only what the pipeline does:
#   push images to the images and the build-cache repositories (repository-scoped writer),
#   move the analyze service and the compose job to a new image (run.developer on those two only,
#   and actAs on their runtime accounts, which a new revision runs as), write its build logs.
# It cannot change IAM, functions, the workflow, buckets or data: those go through terraform apply.

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "beatsync Cloud Build pipeline"
}

# --cache-from needs a tag that moves (the images repository's tags are immutable)
resource "google_artifact_registry_repository" "build_cache" {
  project       = var.project_id
  location      = var.region
  repository_id = "${var.image_repository}-cache"
  format        = "DOCKER"
  description   = "beatsync build cache: the last main build of each image, tagged main"
  kms_key_name  = var.kms_key_name
  labels        = local.labels

  docker_config {
    immutable_tags = false
  }

  cleanup_policies {
    id     = "drop-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "604800s"
    }
  }

  depends_on = [google_project_service.this]
}

locals {
  build_member = "serviceAccount:${google_service_account.build.email}"
  build_repositories = {
    images = google_artifact_registry_repository.images.repository_id
    cache  = google_artifact_registry_repository.build_cache.repository_id
  }
  # the runtime accounts of what the pipeline deploys
  build_deploys_as = toset(["analyze", "compose"])
}

resource "google_artifact_registry_repository_iam_member" "build_push" {
  for_each = local.build_repositories

  project    = var.project_id
  location   = var.region
  repository = each.value
  role       = "roles/artifactregistry.writer"
  member     = local.build_member
}

resource "google_cloud_run_v2_service_iam_member" "build_deploys_analyze" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.analyze.name
  role     = "roles/run.developer"
  member   = local.build_member
}

resource "google_cloud_run_v2_job_iam_member" "build_deploys_compose" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.compose.name
  role     = "roles/run.developer"
  member   = local.build_member
}

resource "google_service_account_iam_member" "build_acts_as" {
  for_each = local.build_deploys_as

  service_account_id = google_service_account.this[each.value].name
  role               = "roles/iam.serviceAccountUser"
  member             = local.build_member
}

# a build with a user-specified account writes its logs to Cloud Logging only (options.logging)
resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.build_member
}

resource "google_cloudbuild_trigger" "main" {
  count = var.build_github == null ? 0 : 1

  project         = var.project_id
  location        = "global"
  name            = "${var.name_prefix}-main"
  description     = "beatsync: tests, images, deploy of the images on every push to main"
  filename        = "cloudbuild.yaml"
  service_account = google_service_account.build.id

  github {
    owner = var.build_github.owner
    name  = var.build_github.name
    push {
      branch = "^main$"
    }
  }

  substitutions = {
    _REGION           = var.region
    _REPOSITORY       = google_artifact_registry_repository.images.repository_id
    _CACHE_REPOSITORY = google_artifact_registry_repository.build_cache.repository_id
    _NAME_PREFIX      = var.name_prefix
  }

  depends_on = [
    google_project_service.this,
    google_project_iam_member.build_logs,
    google_artifact_registry_repository_iam_member.build_push,
  ]
}

output "build_service_account" {
  description = "Service account the Cloud Build pipeline runs as."
  value       = google_service_account.build.email
}

output "build_trigger" {
  description = "Cloud Build trigger on pushes to main (null without build_github)."
  value       = try(google_cloudbuild_trigger.main[0].name, null)
}
