# The analyze service: the workflow's analyze step and its control calls. Internal ingress (the
# workflow's calls count as internal), invoked only by the workflow's service account.
resource "google_cloud_run_v2_service" "analyze" {
  project             = var.project_id
  name                = local.analyze_name
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = var.deletion_protection
  labels              = local.labels

  template {
    service_account                  = google_service_account.this["analyze"].email
    timeout                          = "1800s"
    max_instance_request_concurrency = 4
    encryption_key                   = var.kms_key_name
    labels                           = local.labels

    scaling {
      min_instance_count = 0
      max_instance_count = var.analyze_max_instances
    }

    containers {
      image = local.analyze_image

      resources {
        limits = {
          cpu    = "2"
          memory = "4Gi"
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.enqueuer_env
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name = "BEATSYNC_WEBHOOK_SECRET"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.webhook.secret_id
            version = "latest"
          }
        }
      }

      startup_probe {
        http_get {
          path = "/"
        }
        initial_delay_seconds = 2
        period_seconds        = 5
        failure_threshold     = 12
      }

      liveness_probe {
        http_get {
          path = "/"
        }
        period_seconds = 30
      }
    }
  }

  depends_on = [google_project_service.this, google_secret_manager_secret_iam_member.webhook_secret]
}

# The compose step: one execution per attempt, started by the analyze service with
# args ["compose-job", JOB_ID] and taskCount = the render plan's segments (overrides.taskCount; each
# task reads CLOUD_RUN_TASK_INDEX / CLOUD_RUN_TASK_COUNT and renders its segment). 4 vCPU / 8 GiB per
# task; a failed task is retried by the execution (max_retries); the workflow owns the outer budget
# (BEATSYNC_COMPOSE_ATTEMPTS executions), and the task timeout is far above any HTTP limit.
resource "google_cloud_run_v2_job" "compose" {
  project             = var.project_id
  name                = local.compose_name
  location            = var.region
  deletion_protection = var.deletion_protection
  labels              = local.labels

  template {
    task_count  = 1
    parallelism = var.render_max_tasks
    labels      = local.labels

    template {
      service_account = google_service_account.this["compose"].email
      timeout         = "${var.compose_timeout_seconds}s"
      max_retries     = var.compose_task_retries
      encryption_key  = var.kms_key_name

      containers {
        image = local.compose_image
        args  = ["compose-job"]

        resources {
          limits = {
            cpu    = "4"
            memory = "8Gi"
          }
        }

        dynamic "env" {
          for_each = local.enqueuer_env
          content {
            name  = env.key
            value = env.value
          }
        }

        env {
          name = "BEATSYNC_WEBHOOK_SECRET"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.webhook.secret_id
              version = "latest"
            }
          }
        }
      }
    }
  }

  depends_on = [google_project_service.this, google_secret_manager_secret_iam_member.webhook_secret]
}
