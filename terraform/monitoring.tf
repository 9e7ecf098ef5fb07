# The seed's dashboard and alerts (docs/operations-dashboards.md lists them against the seed).
# Request metrics come from Cloud Run (the 2nd gen functions are Cloud Run services too) and from
# the public load balancer when there is one (resource https_lb_rule; no data without one).
# Job outcomes come from the services' structured log lines ({"audit": "job.end", "status": ...});
# the seed's job_count / job_duration are log-based metrics of terraform/metrics.tf, named here by
# type so that this file does not depend on that one.

locals {
  run_services = [local.submit_name, local.status_name, local.analyze_name]
  run_filter   = "resource.type=\"cloud_run_revision\" AND resource.label.\"service_name\"=monitoring.regex.full_match(\"${join("|", local.run_services)}\")"
  # the public functions (the seed's "beat-sync-service")
  public_filter = "resource.type=\"cloud_run_revision\" AND resource.label.\"service_name\"=monitoring.regex.full_match(\"${local.submit_name}|${local.status_name}\")"
  lb_filter     = "resource.type=\"https_lb_rule\" AND resource.label.\"url_map_name\"=monitoring.regex.full_match(\"${coalesce(var.public_url_map, "${var.name_prefix}.*")}\")"
  compose_job   = "resource.type=\"cloud_run_job\" AND resource.label.\"job_name\"=\"${local.compose_name}\""
  outcome_type  = "logging.googleapis.com/user/${google_logging_metric.job_outcomes.name}"
  # terraform/metrics.tf (labels job_type and status, as the seed's custom metrics)
  job_count_type    = "logging.googleapis.com/user/beat_sync/job_count"
  job_duration_type = "logging.googleapis.com/user/beat_sync/job_duration"
  dead_letter_sub   = coalesce(var.dead_letter_subscription, "${var.pubsub_requests_topic}-dead-letter")

  request_count = "metric.type=\"run.googleapis.com/request_count\""
  lb_count      = "metric.type=\"loadbalancing.googleapis.com/https/request_count\""

  by_service = ["resource.label.\"service_name\""]
  rate       = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM" }

  # one dataset: { query = a timeSeriesQuery (a filter and its aggregation, or a ratio of two), legend }
  series = {
    requests_run = { query = { timeSeriesFilter = { filter = "${local.request_count} AND ${local.run_filter}", aggregation = merge(local.rate, { groupByFields = local.by_service }) } }, legend = "$${resource.labels.service_name}" }
    requests_lb  = { query = { timeSeriesFilter = { filter = "${local.lb_count} AND ${local.lb_filter}", aggregation = local.rate } }, legend = "public entry (load balancer)" }
  }

  percentiles = { p50 = "REDUCE_PERCENTILE_50", p95 = "REDUCE_PERCENTILE_95", p99 = "REDUCE_PERCENTILE_99" }

  # the seed's six charts, then the job charts; each is { title, plot, datasets }
  charts = [
    {
      title    = "Request rate"
      plot     = "LINE"
      datasets = [local.series.requests_run, local.series.requests_lb]
    },
    {
      title = "Request latency (p50, p95, p99)"
      plot  = "LINE"
      datasets = concat(
        [for p, reducer in local.percentiles : {
          query  = { timeSeriesFilter = { filter = "metric.type=\"run.googleapis.com/request_latencies\" AND ${local.public_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = reducer, groupByFields = local.by_service } } }
          legend = "${p} $${resource.labels.service_name}"
        }],
        [for p, reducer in local.percentiles : {
          query  = { timeSeriesFilter = { filter = "metric.type=\"loadbalancing.googleapis.com/https/total_latencies\" AND ${local.lb_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = reducer } } }
          legend = "${p} public entry"
        }]
      )
    },
    {
      title = "Active instances"
      plot  = "STACKED_AREA"
      datasets = [
        { query = { timeSeriesFilter = { filter = "metric.type=\"run.googleapis.com/container/instance_count\" AND ${local.run_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM", groupByFields = local.by_service } } }, legend = "$${resource.labels.service_name}" },
        { query = { timeSeriesFilter = { filter = "metric.type=\"run.googleapis.com/job/running_task_attempts\" AND ${local.compose_job}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM" } } }, legend = "compose tasks" },
      ]
    },
    {
      title    = "Memory utilisation (p95)"
      plot     = "LINE"
      datasets = [{ query = { timeSeriesFilter = { filter = "metric.type=\"run.googleapis.com/container/memory/utilizations\" AND ${local.run_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_95", groupByFields = local.by_service } } }, legend = "$${resource.labels.service_name}" }]
    },
    {
      title    = "CPU utilisation (p95)"
      plot     = "LINE"
      datasets = [{ query = { timeSeriesFilter = { filter = "metric.type=\"run.googleapis.com/container/cpu/utilizations\" AND ${local.run_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_95", groupByFields = local.by_service } } }, legend = "$${resource.labels.service_name}" }]
    },
    {
      title = "Error rate (non-2xx / all)"
      plot  = "LINE"
      datasets = [
        {
          query = { timeSeriesFilterRatio = {
            numerator   = { filter = "${local.request_count} AND ${local.run_filter} AND metric.label.\"response_code_class\"!=\"2xx\"", aggregation = merge(local.rate, { groupByFields = local.by_service }) }
            denominator = { filter = "${local.request_count} AND ${local.run_filter}", aggregation = merge(local.rate, { groupByFields = local.by_service }) }
          } }
          legend = "$${resource.labels.service_name}"
        },
        {
          query = { timeSeriesFilterRatio = {
            numerator   = { filter = "${local.lb_count} AND ${local.lb_filter} AND metric.label.\"response_code_class\"!=200", aggregation = local.rate }
            denominator = { filter = "${local.lb_count} AND ${local.lb_filter}", aggregation = local.rate }
          } }
          legend = "public entry (load balancer)"
        },
      ]
    },
    {
      title    = "Jobs by status"
      plot     = "STACKED_BAR"
      datasets = [{ query = { timeSeriesFilter = { filter = "metric.type=\"${local.job_count_type}\"", aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_SUM", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.\"status\""] } } }, legend = "$${metric.labels.status}" }]
    },
    {
      title = "Job duration (p50, p95, p99)"
      plot  = "LINE"
      datasets = [for p, reducer in local.percentiles : {
        query  = { timeSeriesFilter = { filter = "metric.type=\"${local.job_duration_type}\"", aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = reducer, groupByFields = ["metric.label.\"job_type\""] } } }
        legend = "${p} $${metric.labels.job_type}"
      }]
    },
    {
      title    = "Compose attempts (job executions by result)"
      plot     = "STACKED_BAR"
      datasets = [{ query = { timeSeriesFilter = { filter = "metric.type=\"run.googleapis.com/job/completed_execution_count\" AND ${local.compose_job}", aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_SUM", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.\"result\""] } } }, legend = "$${metric.labels.result}" }]
    },
    {
      title = "Webhook queue and dead letters"
      plot  = "LINE"
      datasets = [
        { query = { timeSeriesFilter = { filter = "metric.type=\"cloudtasks.googleapis.com/queue/depth\" AND resource.type=\"cloud_tasks_queue\" AND resource.label.\"queue_id\"=\"${google_cloud_tasks_queue.webhooks.name}\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_MAX" } } }, legend = "webhook tasks queued" },
        { query = { timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND resource.label.\"subscription_id\"=\"${local.dead_letter_sub}\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_MAX" } } }, legend = "dead-lettered requests" },
      ]
    },
  ]
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
    displayName = "Beat-Sync Service Dashboard"
    gridLayout = {
      columns = 2
      widgets = [for c in local.charts : {
        title = c.title
        xyChart = {
          dataSets = [for d in c.datasets : {
            plotType           = c.plot
            legendTemplate     = d.legend
            timeSeriesQuery    = d.query
            minAlignmentPeriod = "60s"
          }]
        }
      }]
    }
  })
}

# -- alerts -------------------------------------------------------------------------------------

# the seed's: non-2xx responses above 5 % of all for 5 minutes
resource "google_monitoring_alert_policy" "error_rate" {
  project               = var.project_id
  display_name          = "Beat-Sync High Error Rate"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "Error rate > 5% (non-2xx / all) for 5 min"
    condition_threshold {
      filter             = "${local.request_count} AND ${local.public_filter} AND metric.label.\"response_code_class\"!=\"2xx\""
      denominator_filter = "${local.request_count} AND ${local.public_filter}"
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
    content   = "More than 5 % of the API's answers are not 2xx (the seed's definition: 4xx count too, so a misbehaving caller shows here; the 5xx alert isolates the service's own faults). The error codes are in the functions' logs."
    mime_type = "text/markdown"
  }
}

# the project's own: the service answers 4xx/2xx, never 5xx, for anything a caller sends
resource "google_monitoring_alert_policy" "server_errors" {
  project               = var.project_id
  display_name          = "Beat-Sync 5xx responses"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "5xx > 1% of all requests for 5 min"
    condition_threshold {
      filter             = "${local.request_count} AND ${local.run_filter} AND metric.label.\"response_code_class\"=\"5xx\""
      denominator_filter = "${local.request_count} AND ${local.run_filter}"
      comparison         = "COMPARISON_GT"
      threshold_value    = 0.01
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
    content   = "beatsync answers 5xx only when a dependency is down (503 with Retry-After) or on a bug (500). Check /health and the services' logs."
    mime_type = "text/markdown"
  }
}

# the seed's: p95 latency above 30 s, over the public functions
resource "google_monitoring_alert_policy" "latency" {
  project               = var.project_id
  display_name          = "Beat-Sync High Latency"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "p95 latency > 30s for 5 min"
    condition_threshold {
      filter          = "metric.type=\"run.googleapis.com/request_latencies\" AND ${local.public_filter}"
      comparison      = "COMPARISON_GT"
      threshold_value = 30000
      duration        = "300s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_PERCENTILE_95"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.\"service_name\""]
      }
    }
  }

  documentation {
    content   = "The submit or status function's p95 latency is above the seed's 30 s. POST /analyze holds a request up to BEATSYNC_SYNC_WAIT (20 s); anything slower is Firestore, Workflows or cold starts."
    mime_type = "text/markdown"
  }
}

# the project's tighter target, on the status function only: submit's POST /analyze waits for a
# quick result by design (up to BEATSYNC_SYNC_WAIT), status reads do not wait for anything
resource "google_monitoring_alert_policy" "status_latency" {
  project               = var.project_id
  display_name          = "Beat-Sync status latency above target"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "status p95 latency > ${var.latency_p95_threshold_ms} ms for 5 min"
    condition_threshold {
      filter          = "metric.type=\"run.googleapis.com/request_latencies\" AND resource.type=\"cloud_run_revision\" AND resource.label.\"service_name\"=\"${local.status_name}\""
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
    content   = "Status, list and cancel calls answer slowly (p95). Cold starts, Firestore latency or URL signing (IAM signBlob)."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "failed_jobs" {
  project               = var.project_id
  display_name          = "Beat-Sync failed jobs"
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

resource "google_monitoring_alert_policy" "failed_job_ratio" {
  project               = var.project_id
  display_name          = "Beat-Sync failed-job ratio"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "failed / ended jobs > ${var.failed_job_ratio} over 30 min"
    condition_threshold {
      filter             = "metric.type=\"${local.outcome_type}\" AND metric.label.\"status\"=\"failed\""
      denominator_filter = "metric.type=\"${local.outcome_type}\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.failed_job_ratio
      duration           = "0s"
      aggregations {
        alignment_period     = "1800s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "1800s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "A large share of the jobs that ended in the last 30 minutes failed (bad inputs from one caller, or a broken dependency). The metric's code label says which error."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "Beat-Sync dead-lettered requests"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "messages in ${local.dead_letter_sub}"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND resource.label.\"subscription_id\"=\"${local.dead_letter_sub}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "60s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
      }
    }
  }

  documentation {
    content   = "Pub/Sub requests that could never become a job were dead-lettered. Pull them from the subscription to see why (the service logged a reason when it acknowledged each)."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "webhook_backlog" {
  project               = var.project_id
  display_name          = "Beat-Sync webhook queue backlog"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "more than ${var.webhook_backlog_threshold} webhook tasks queued for 10 min"
    condition_threshold {
      filter          = "metric.type=\"cloudtasks.googleapis.com/queue/depth\" AND resource.type=\"cloud_tasks_queue\" AND resource.label.\"queue_id\"=\"${google_cloud_tasks_queue.webhooks.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.webhook_backlog_threshold
      duration        = "600s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
      }
    }
  }

  documentation {
    content   = "Webhook deliveries are piling up: receivers are down or slow, or the queue's dispatch rate (webhook_queue) is too low for the job rate."
    mime_type = "text/markdown"
  }
}
