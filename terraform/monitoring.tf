# Job outcomes come from the services' structured log lines ({"audit": "job.end", "status": ...});
# request metrics from Cloud Run (the 2nd gen functions are Cloud Run services too).

locals {
  run_services = [local.submit_name, local.status_name, local.analyze_name]
  run_filter   = "resource.type=\"cloud_run_revision\" AND resource.label.\"service_name\"=monitoring.regex.full_match(\"${join("|", local.run_services)}\")"
  outcome_type = "logging.googleapis.com/user/${google_logging_metric.job_outcomes.name}"

  chart = {
    requests  = { title = "Request rate", metric = "run.googleapis.com/request_count", aligner = "ALIGN_RATE", extra = "" }
    errors    = { title = "5xx responses", metric = "run.googleapis.com/request_count", aligner = "ALIGN_RATE", extra = " AND metric.label.\"response_code_class\"=\"5xx\"" }
    latency   = { title = "Latency p95", metric = "run.googleapis.com/request_latencies", aligner = "ALIGN_PERCENTILE_95", extra = "" }
    instances = { title = "Instances", metric = "run.googleapis.com/container/instance_count", aligner = "ALIGN_MAX", extra = "" }
    memory    = { title = "Memory utilisation p95", metric = "run.googleapis.com/container/memory/utilizations", aligner = "ALIGN_PERCENTILE_95", extra = "" }
    cpu       = { title = "CPU utilisation p95", metric = "run.googleapis.com/container/cpu/utilizations", aligner = "ALIGN_PERCENTILE_95", extra = "" }
  }
}

resource "google_logging_metric" "job_outcomes" {
  project = var.project_id
  name    = "${var.name_prefix}-job-outcomes"
  filter  = "jsonPayload.audit=\"job.end\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "beatsync job outcomes"

    labels {
      key         = "status"
      value_type  = "STRING"
      description = "completed, failed or cancelled"
    }

    labels {
      key         = "code"
      value_type  = "STRING"
      description = "error code of a failed job"
    }

    labels {
      key         = "type"
      value_type  = "STRING"
      description = "create or analyze"
    }
  }

  label_extractors = {
    status = "EXTRACT(jsonPayload.status)"
    code   = "EXTRACT(jsonPayload.code)"
    type   = "EXTRACT(jsonPayload.type)"
  }
}

resource "google_monitoring_dashboard" "beatsync" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "beatsync"
    gridLayout = {
      columns = 2
      widgets = concat(
        [for k, c in local.chart : {
          title = c.title
          xyChart = {
            dataSets = [{
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "metric.type=\"${c.metric}\" AND ${local.run_filter}${c.extra}"
                  aggregation = {
                    alignmentPeriod    = "60s"
                    perSeriesAligner   = c.aligner
                    crossSeriesReducer = "REDUCE_SUM"
                    groupByFields      = ["resource.label.\"service_name\""]
                  }
                }
              }
            }]
          }
        }],
        [{
          title = "Job outcomes"
          xyChart = {
            dataSets = [{
              plotType = "STACKED_BAR"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "metric.type=\"${local.outcome_type}\""
                  aggregation = {
                    alignmentPeriod    = "300s"
                    perSeriesAligner   = "ALIGN_SUM"
                    crossSeriesReducer = "REDUCE_SUM"
                    groupByFields      = ["metric.label.\"status\""]
                  }
                }
              }
            }]
          }
        }]
      )
    }
  })
}

resource "google_monitoring_alert_policy" "error_rate" {
  project               = var.project_id
  display_name          = "beatsync: 5xx error rate above 5 %"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "5xx / all requests > 5 % for 5 min"
    condition_threshold {
      filter             = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_filter} AND metric.label.\"response_code_class\"=\"5xx\""
      denominator_filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_filter}"
      comparison         = "COMPARISON_GT"
      threshold_value    = 0.05
      duration           = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "More than 5 % of beatsync requests fail with 5xx. Check the services' logs and /health."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "latency" {
  project               = var.project_id
  display_name          = "beatsync: p95 latency of the public functions"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "p95 latency > ${var.latency_p95_threshold_ms} ms for 5 min"
    condition_threshold {
      filter          = "metric.type=\"run.googleapis.com/request_latencies\" AND resource.type=\"cloud_run_revision\" AND resource.label.\"service_name\"=monitoring.regex.full_match(\"${local.submit_name}|${local.status_name}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = var.latency_p95_threshold_ms
      duration        = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_PERCENTILE_95"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.\"service_name\""]
      }
    }
  }

  documentation {
    content   = "The submit or status function answers slowly (p95). Cold starts, Firestore latency or a hot spot."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "failed_jobs" {
  project               = var.project_id
  display_name          = "beatsync: failed jobs"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "more than 5 failed jobs in 10 min"
    condition_threshold {
      filter          = "metric.type=\"${local.outcome_type}\" AND metric.label.\"status\"=\"failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = 5
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "Jobs are failing. The job logs (GET /api/v1/beat-sync/jobs/{id}/logs) and the metric's code label say why."
    mime_type = "text/markdown"
  }
}
