# Webhook deliveries: one HTTP task per event (signed body), retried by the queue.
resource "google_cloud_tasks_queue" "webhooks" {
  project  = var.project_id
  name     = "${var.name_prefix}-webhooks"
  location = var.region

  rate_limits {
    max_concurrent_dispatches = var.webhook_queue.max_concurrent_dispatches
    max_dispatches_per_second = var.webhook_queue.max_dispatches_per_second
  }

  retry_config {
    max_attempts  = var.webhook_queue.max_attempts
    min_backoff   = var.webhook_queue.min_backoff
    max_backoff   = var.webhook_queue.max_backoff
    max_doublings = 4
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.this]
}
