resource "google_firestore_database" "jobs" {
  project                           = var.project_id
  name                              = "(default)"
  location_id                       = var.region
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.this]
}

locals {
  # JobStore.list: owner == X [and status == S] [and type == T], newest first, ties by job_id; a
  # caller's list with its end users' jobs: (owner == X or caller == X) [...], one index per branch;
  # JobStore.active: status in (queued, processing), oldest first.
  job_indexes = {
    owner              = [["owner", "ASCENDING"], ["created_at_ts", "DESCENDING"], ["job_id", "ASCENDING"]]
    owner_status       = [["owner", "ASCENDING"], ["status", "ASCENDING"], ["created_at_ts", "DESCENDING"], ["job_id", "ASCENDING"]]
    owner_type         = [["owner", "ASCENDING"], ["type", "ASCENDING"], ["created_at_ts", "DESCENDING"], ["job_id", "ASCENDING"]]
    owner_status_type  = [["owner", "ASCENDING"], ["status", "ASCENDING"], ["type", "ASCENDING"], ["created_at_ts", "DESCENDING"], ["job_id", "ASCENDING"]]
    caller             = [["caller", "ASCENDING"], ["created_at_ts", "DESCENDING"], ["job_id", "ASCENDING"]]
    caller_status      = [["caller", "ASCENDING"], ["status", "ASCENDING"], ["created_at_ts", "DESCENDING"], ["job_id", "ASCENDING"]]
    caller_type        = [["caller", "ASCENDING"], ["type", "ASCENDING"], ["created_at_ts", "DESCENDING"], ["job_id", "ASCENDING"]]
    caller_status_type = [["caller", "ASCENDING"], ["status", "ASCENDING"], ["type", "ASCENDING"], ["created_at_ts", "DESCENDING"], ["job_id", "ASCENDING"]]
    active             = [["status", "ASCENDING"], ["created_at_ts", "ASCENDING"], ["job_id", "ASCENDING"]]
  }
}

resource "google_firestore_index" "jobs" {
  for_each = local.job_indexes

  project    = var.project_id
  database   = google_firestore_database.jobs.name
  collection = var.firestore_collection

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

# Old job documents are deleted by Firestore: each carries expire_at = created + job_ttl_days.
resource "google_firestore_field" "job_ttl" {
  project    = var.project_id
  database   = google_firestore_database.jobs.name
  collection = var.firestore_collection
  field      = "expire_at"

  ttl_config {}

  # a TTL field needs no single-field indexes
  index_config {}
}

# The quota documents (one per job owner and per caller: adapters/firestore_jobs.py) go two days
# after their scope's last create.
resource "google_firestore_field" "quota_ttl" {
  project    = var.project_id
  database   = google_firestore_database.jobs.name
  collection = "${var.firestore_collection}_quotas"
  field      = "expire_at"

  ttl_config {}

  index_config {}
}
