# The seed's custom metrics job_count (labels job_type, status) and job_duration (job_type), as
# log-based metrics: no monitoring client on the hot path. Every ended job writes one structured
# line (src/beatsync/jobs/steps.py, end_job), which Cloud Run and Cloud Functions turn into a
# Cloud Logging entry with this jsonPayload:
#   {"message": "job.end", "audit": "job.end", "job_id": "...", "job_type": "create",
#    "status": "completed", "processing_time_seconds": 41.2, "metrics": {...}, ...}
# tests/unit/test_log_metrics.py evaluates these filters and extractors, as written here, against
# the lines the code emits. Metric types: logging.googleapis.com/user/beat_sync/job_count, .../job_duration.

resource "google_logging_metric" "job_count" {
  project = var.project_id
  name    = "beat_sync/job_count"
  filter  = "jsonPayload.audit=\"job.end\" AND jsonPayload.job_type:* AND jsonPayload.status:*"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "beat_sync job_count"

    labels {
      key         = "job_type"
      value_type  = "STRING"
      description = "create or analyze"
    }

    labels {
      key         = "status"
      value_type  = "STRING"
      description = "completed, failed or cancelled"
    }
  }

  label_extractors = {
    job_type = "EXTRACT(jsonPayload.job_type)"
    status   = "EXTRACT(jsonPayload.status)"
  }
}

resource "google_logging_metric" "job_duration" {
  project         = var.project_id
  name            = "beat_sync/job_duration"
  filter          = "jsonPayload.audit=\"job.end\" AND jsonPayload.job_type:* AND jsonPayload.processing_time_seconds:*"
  value_extractor = "EXTRACT(jsonPayload.processing_time_seconds)"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "beat_sync job_duration"

    labels {
      key         = "job_type"
      value_type  = "STRING"
      description = "create or analyze"
    }
  }

  label_extractors = {
    job_type = "EXTRACT(jsonPayload.job_type)"
  }

  # 0.5 s .. ~2.6 h in 40 buckets, each 1.25x the one before
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 1.25
      scale              = 0.5
    }
  }
}

# Daily analytics (src/beatsync/adapters/analytics.py): the markers that make a job count once are
# deleted by Firestore after job_ttl_days, like the jobs themselves; the day totals stay.
resource "google_firestore_field" "analytics_counted_ttl" {
  project    = var.project_id
  database   = google_firestore_database.jobs.name
  collection = "counted"
  field      = "expire_at"

  ttl_config {}

  index_config {}
}
