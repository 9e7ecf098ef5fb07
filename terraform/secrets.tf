# The webhook signing key. Terraform creates the secret, not its value (kept out of the state):
#   openssl rand -hex 32 | gcloud secrets versions add beat-sync-webhook-secret --data-file=-
resource "google_secret_manager_secret" "webhook" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-webhook-secret"
  labels    = local.labels

  replication {
    user_managed {
      replicas {
        location = var.region
        dynamic "customer_managed_encryption" {
          for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
          content {
            kms_key_name = customer_managed_encryption.value
          }
        }
      }
    }
  }

  depends_on = [google_project_service.this]
}
