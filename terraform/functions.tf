# The public functions, built by Cloud Functions from a source archive of functions/NAME plus the
# core package and the schemas (made by scripts/build-function-sources) with their own light
# requirements (no numpy / librosa / av).

data "archive_file" "function" {
  for_each = toset(["submit", "status"])

  type        = "zip"
  source_dir  = "${path.module}/../build/functions/${each.key}"
  output_path = "${path.module}/../build/functions/${each.key}.zip"
}

resource "google_storage_bucket_object" "function_source" {
  for_each = data.archive_file.function

  bucket = google_storage_bucket.sources.name
  name   = "functions/${each.key}-${each.value.output_sha256}.zip"
  source = each.value.output_path
}

locals {
  # the public functions answer browsers from these origins (CORS; empty: none)
  browser_env = {
    BEATSYNC_CORS_ORIGINS = join(",", var.cors_origins)
  }

  function_env = merge(local.common_env, local.identity_env, local.browser_env, local.pubsub_intake_env, {
    LOG_EXECUTION_ID = "true"
  })
}

resource "google_cloudfunctions2_function" "submit" {
  project     = var.project_id
  name        = local.submit_name
  location    = var.region
  description = "beatsync: POST /api/v1/beat-sync/analyze and /create"
  labels      = local.labels

  build_config {
    runtime     = "python311"
    entry_point = "submit"
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.function_source["submit"].name
      }
    }
  }

  service_config {
    max_instance_count               = var.function_max_instances
    min_instance_count               = 0
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    max_instance_request_concurrency = 20
    timeout_seconds                  = 60
    ingress_settings                 = "ALLOW_INTERNAL_AND_GCLB"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.this["submit"].email
    environment_variables            = local.function_env

    secret_environment_variables {
      key        = "BEATSYNC_API_KEYS"
      project_id = var.project_id
      secret     = google_secret_manager_secret.api_keys.secret_id
      version    = "latest"
    }
  }

  depends_on = [google_project_service.this, google_secret_manager_secret_iam_member.api_keys]
}

resource "google_cloudfunctions2_function" "status" {
  project     = var.project_id
  name        = local.status_name
  location    = var.region
  description = "beatsync: job status, cancel, list, logs, presets, transitions, health"
  labels      = local.labels

  build_config {
    runtime     = "python311"
    entry_point = "status"
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.function_source["status"].name
      }
    }
  }

  service_config {
    max_instance_count               = var.function_max_instances
    min_instance_count               = 0
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    max_instance_request_concurrency = 40
    timeout_seconds                  = 60
    ingress_settings                 = "ALLOW_INTERNAL_AND_GCLB"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.this["status"].email
    environment_variables            = merge(local.enqueuer_env, local.identity_env, local.browser_env, { LOG_EXECUTION_ID = "true" })

    secret_environment_variables {
      key        = "BEATSYNC_WEBHOOK_SECRET"
      project_id = var.project_id
      secret     = google_secret_manager_secret.webhook.secret_id
      version    = "latest"
    }

    secret_environment_variables {
      key        = "BEATSYNC_API_KEYS"
      project_id = var.project_id
      secret     = google_secret_manager_secret.api_keys.secret_id
      version    = "latest"
    }
  }

  depends_on = [google_project_service.this, google_secret_manager_secret_iam_member.webhook_secret, google_secret_manager_secret_iam_member.api_keys]
}
