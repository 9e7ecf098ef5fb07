output "analyze_url" {
  description = "URL of the internal analyze service (called by the workflow only)."
  value       = google_cloud_run_v2_service.analyze.uri
}

output "compose_job" {
  description = "Name of the Cloud Run job that runs compose attempts."
  value       = google_cloud_run_v2_job.compose.name
}

output "bucket" {
  description = "Media bucket (inputs/, outputs/, cache/, temp/)."
  value       = google_storage_bucket.media.name
}

output "workflow_name" {
  description = "Workflows workflow that runs each job."
  value       = google_workflows_workflow.beat_sync.name
}

output "webhook_queue" {
  description = "Cloud Tasks queue of webhook deliveries."
  value       = google_cloud_tasks_queue.webhooks.name
}

output "image_repository" {
  description = "Docker repository to push the analyze and compose images to."
  value       = local.image_base
}

output "service_accounts" {
  description = "Service account email of each component."
  value       = { for k, sa in google_service_account.this : k => sa.email }
}

output "webhook_secret_id" {
  description = "Secret Manager secret holding the webhook signing key (add a version before the first job)."
  value       = google_secret_manager_secret.webhook.secret_id
}
