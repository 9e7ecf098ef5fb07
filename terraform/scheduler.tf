# The end_pending sweep (src/beatsync/jobs/lifecycle.py): a job whose end's follow-up (audit line,
# analytics, webhook, event, clean-up) was cut short by a killed instance keeps end_pending. On
# end_pending_sweep_schedule, Cloud Scheduler calls the analyze service's POST /internal/sweep, which
# finishes the ends older than end_pending_sweep_age_seconds (a younger one may still be finishing
# where it started). The call carries an OIDC token of the sweeper account, whose only grant is
# run.invoker on the analyze service (iam.tf); Cloud Scheduler in the project counts as internal
# traffic for the service's internal-only ingress.
resource "google_cloud_scheduler_job" "end_pending_sweep" {
  project          = var.project_id
  region           = var.region
  name             = "${var.name_prefix}-end-pending-sweep"
  description      = "Finishes job ends left pending by a killed instance (POST /internal/sweep)."
  schedule         = var.end_pending_sweep_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "320s" # the sweep stops starting new ends after 120 s (lifecycle.SWEEP_BUDGET)

  retry_config {
    retry_count = 1 # the next run sweeps again anyway
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.analyze.uri}/internal/sweep"
    body        = base64encode(jsonencode({ older_than_seconds = var.end_pending_sweep_age_seconds }))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.this["sweeper"].email
      audience              = google_cloud_run_v2_service.analyze.uri
    }
  }

  depends_on = [google_project_service.this]
}
