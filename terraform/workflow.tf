# The pipeline: workflows/beat_sync.yaml, with the deployment's values in its environment.
resource "google_workflows_workflow" "beat_sync" {
  project         = var.project_id
  name            = local.workflow_name
  region          = var.region
  description     = "beatsync: analyze, then compose attempts as Cloud Run job executions, per job"
  service_account = google_service_account.this["flow"].id
  call_log_level  = "LOG_ALL_CALLS"
  crypto_key_name = var.kms_key_name
  labels          = local.labels
  source_contents = file("${path.module}/../workflows/beat_sync.yaml")

  user_env_vars = {
    BEATSYNC_CONTROL_URL      = google_cloud_run_v2_service.analyze.uri
    BEATSYNC_AUTH_MODE        = "OIDC"
    BEATSYNC_POLL_SECONDS     = tostring(var.poll_seconds)
    BEATSYNC_DEADLINE_SECONDS = tostring(var.job_deadline_seconds)
    BEATSYNC_COMPOSE_ATTEMPTS = tostring(var.compose_attempts)
  }

  depends_on = [google_project_service.this]
}
