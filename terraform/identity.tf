# Who may call the API, configured on both public functions (src/beatsync/http/auth.py):
#   - Google ID tokens (the seed's "Option 2"): accepted only from the emails in id_token_callers,
#     with audience = api_url (the URL the caller calls, the equivalent of a Cloud Run custom
#     audience, since the load balancer, not Cloud Run IAM, is the door). With id_token_callers
#     empty (the default) no audience is set and every ID token is refused: any service account of
#     any project can mint a Google-signed token for any audience, so an audience alone admits anyone.
#     (The service refuses ID tokens without allowed callers too, whatever its audience setting.)
#   - API keys: kept in Secret Manager (one version = the comma-separated keys), mounted into the
#     functions as a secret, never in plain env, state or outputs.
# A caller in trusted_callers (a platform backend acting for its own users) may name the end user
# of a request (X-Beatsync-User-Id): quotas are then per user and, together, per caller
# (BEATSYNC_CALLER_MAX_ACTIVE_JOBS, BEATSYNC_CALLER_MAX_SUBMISSIONS_PER_MINUTE); the caller lists its
# users' jobs. With neither ID-token callers nor keys configured the deployed functions refuse every
# API route (503 auth_not_configured) instead of running open.

locals {
  identity_env = {
    BEATSYNC_ID_TOKEN_AUDIENCES = length(var.id_token_callers) > 0 ? local.api_url : ""
    BEATSYNC_ALLOWED_CALLERS    = join(",", var.id_token_callers)
    BEATSYNC_TRUSTED_CALLERS    = join(",", var.trusted_callers)
    BEATSYNC_REQUIRE_AUTH       = "true"
  }
}

resource "google_secret_manager_secret" "api_keys" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-api-keys"
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

resource "google_secret_manager_secret_iam_member" "api_keys" {
  for_each = toset(["submit", "status"])

  project   = var.project_id
  secret_id = google_secret_manager_secret.api_keys.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.this[each.value].email}"
}

output "api_keys_secret_id" {
  description = "Secret Manager secret of the API keys (add a version with the comma-separated keys before the first apply of the functions)."
  value       = google_secret_manager_secret.api_keys.secret_id
}
