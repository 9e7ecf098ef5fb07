variable "project_id" {
  description = "Google Cloud project that hosts beatsync."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid project id (6-30 lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of every regional resource (functions, Cloud Run, workflow, queue, bucket)."
  type        = string
  default     = "asia-southeast1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like asia-southeast1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name, so several environments can share a project."
  type        = string
  default     = "beat-sync"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 lowercase letters, digits or hyphens."
  }
}

variable "bucket_name" {
  description = "Globally unique name of the media bucket (inputs/, outputs/, cache/, temp/)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid GCS bucket name."
  }
}

variable "cors_origins" {
  description = "Browser origins allowed to call the API (BEATSYNC_CORS_ORIGINS of the functions) and to upload to and download from the bucket."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.cors_origins : can(regex("^https://", o))])
    error_message = "cors_origins must be https:// origins."
  }
}

variable "image_repository" {
  description = "Artifact Registry repository id for the beatsync images."
  type        = string
  default     = "beat-sync"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.image_repository))
    error_message = "image_repository must be lowercase letters, digits and hyphens."
  }
}

variable "image_tag" {
  description = "Tag of the analyze and compose images to deploy (build and push them first; see the README)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be a valid, immutable Docker tag (not latest)."
  }
}

variable "function_max_instances" {
  description = "Most instances of each of the submit and status functions."
  type        = number
  default     = 20

  validation {
    condition     = var.function_max_instances >= 1 && var.function_max_instances <= 1000
    error_message = "function_max_instances must be between 1 and 1000."
  }
}

variable "analyze_max_instances" {
  description = "Most instances of the analyze service."
  type        = number
  default     = 10

  validation {
    condition     = var.analyze_max_instances >= 1 && var.analyze_max_instances <= 1000
    error_message = "analyze_max_instances must be between 1 and 1000."
  }
}

variable "compose_timeout_seconds" {
  description = "Task timeout of one compose attempt (a Cloud Run job execution), seconds."
  type        = number
  default     = 7200

  validation {
    condition     = var.compose_timeout_seconds >= 600 && var.compose_timeout_seconds <= 86400
    error_message = "compose_timeout_seconds must be between 600 and 86400."
  }
}

variable "render_task_seconds" {
  description = "The shortest segment of a parallel render: at most one compose task per this many seconds of output."
  type        = number
  default     = 30

  validation {
    condition     = var.render_task_seconds >= 5
    error_message = "render_task_seconds must be at least 5."
  }
}

variable "render_target_seconds" {
  description = "Seconds a parallel render's slowest task should take: a render gets the fewest compose tasks predicted to meet it (within render_task_seconds and render_max_tasks; each task adds about 1 CPU-s)."
  type        = number
  default     = 10

  validation {
    condition     = var.render_target_seconds > 0 && var.render_target_seconds <= 3600
    error_message = "render_target_seconds must be more than 0 and at most 3600."
  }
}

variable "compose_early_start" {
  description = "Start the compose job's execution as soon as a job's inputs are fetched, before the edit is planned: its tasks start and fetch the clips while the analysis runs (time to video against a few seconds of idle tasks per job; docs/parallel-render.md)."
  type        = bool
  default     = true
}

variable "render_max_tasks" {
  description = "Most compose tasks (segments) of one render; also the compose job's parallelism."
  type        = number
  default     = 8

  validation {
    condition     = var.render_max_tasks >= 1 && var.render_max_tasks <= 100
    error_message = "render_max_tasks must be between 1 and 100."
  }
}

variable "compose_task_retries" {
  description = "Retries of a failed compose task within one execution (the job's max_retries)."
  type        = number
  default     = 2

  validation {
    condition     = var.compose_task_retries >= 0 && var.compose_task_retries <= 10
    error_message = "compose_task_retries must be between 0 and 10."
  }
}

variable "job_deadline_seconds" {
  description = "A job still running this long after its workflow started fails with deadline_exceeded."
  type        = number
  default     = 21600

  validation {
    condition     = var.job_deadline_seconds >= 600 && var.job_deadline_seconds <= 604800
    error_message = "job_deadline_seconds must be between 600 and 604800."
  }
}

variable "compose_attempts" {
  description = "Compose attempts the workflow makes before a job fails with compose_crashed."
  type        = number
  default     = 3

  validation {
    condition     = var.compose_attempts >= 1 && var.compose_attempts <= 10
    error_message = "compose_attempts must be between 1 and 10."
  }
}

variable "poll_seconds" {
  description = "Seconds between the workflow's checks of a running compose attempt."
  type        = number
  default     = 10

  validation {
    condition     = var.poll_seconds >= 1 && var.poll_seconds <= 300
    error_message = "poll_seconds must be between 1 and 300."
  }
}

variable "allowed_hosts" {
  description = "Hosts (host or host:port) that input and webhook URLs may use even when they resolve to private addresses. Keep empty unless media lives on a private network."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for h in var.allowed_hosts : can(regex("^[A-Za-z0-9.-]+(:[0-9]{1,5})?$", h))])
    error_message = "allowed_hosts entries must be host or host:port."
  }
}

variable "max_input_bytes" {
  description = "Largest input file (song or clip) the service downloads, bytes."
  type        = number
  default     = 524288000

  validation {
    condition     = var.max_input_bytes >= 1048576 && var.max_input_bytes <= 10737418240
    error_message = "max_input_bytes must be between 1 MiB and 10 GiB."
  }
}

variable "max_audio_duration_seconds" {
  description = "Longest song accepted, seconds."
  type        = number
  default     = 900

  validation {
    condition     = var.max_audio_duration_seconds >= 30 && var.max_audio_duration_seconds <= 3600
    error_message = "max_audio_duration_seconds must be between 30 and 3600."
  }
}

variable "analysis_method" {
  description = "Default beat tracker: beatnet (BeatNet's CC BY 4.0 models: commercially usable), librosa (no trained model), madmom or hybrid (madmom's models are CC BY-NC-SA 4.0: non-commercial; need allow_noncommercial_models)."
  type        = string
  default     = "beatnet"

  validation {
    condition     = contains(["beatnet", "librosa", "madmom", "hybrid"], var.analysis_method)
    error_message = "analysis_method must be beatnet, librosa, madmom or hybrid."
  }
}

variable "allow_noncommercial_models" {
  description = "Acknowledge that madmom's models are licensed CC BY-NC-SA 4.0 (non-commercial use only): only then do the madmom and hybrid methods run. Leave false on a commercial platform."
  type        = bool
  default     = false
}

variable "job_ttl_days" {
  description = "Days a job document is kept in Firestore before its TTL policy deletes it."
  type        = number
  default     = 90

  validation {
    condition     = var.job_ttl_days >= 1 && var.job_ttl_days <= 3650
    error_message = "job_ttl_days must be between 1 and 3650."
  }
}

variable "firestore_collection" {
  description = "Firestore collection of the job documents."
  type        = string
  default     = "beat_sync_jobs"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.firestore_collection))
    error_message = "firestore_collection must be lowercase letters, digits and underscores."
  }
}

variable "domain" {
  description = "Domain of the public API (api.example.com): its DNS A record points to api_ip_address; the managed certificate and the ID-token audience use it."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain))
    error_message = "domain must be a lowercase DNS name such as api.example.com."
  }
}

variable "id_token_callers" {
  description = "Emails (usually service accounts) whose Google ID tokens with audience api_url may call the API (the seed's Option 2 callers)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.id_token_callers : can(regex("^[^@,\\s]+@[^@,\\s]+$", e))])
    error_message = "id_token_callers must be email addresses."
  }
}

variable "trusted_callers" {
  description = "Callers that act for their own end users and may name one with X-Beatsync-User-Id: ID-token emails, or key-<first 16 hex of sha256(KEY)> for an API key."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.trusted_callers : can(regex("^([^@,\\s]+@[^@,\\s]+|google:[^@,\\s]+@[^@,\\s]+|key-[0-9a-f]{16})$", c))])
    error_message = "trusted_callers entries must be emails, google:EMAIL or key-<16 hex>."
  }
}

variable "edge_rate_limit" {
  description = "Cloud Armor limits at the entry: requests a minute per client (source IP + Authorization), per source IP before a ban, and the ban's length."
  type = object({
    requests_per_minute_per_client = number
    requests_per_minute_per_ip     = number
    ban_seconds                    = number
  })
  default = {
    requests_per_minute_per_client = 300
    requests_per_minute_per_ip     = 1200
    ban_seconds                    = 600
  }

  validation {
    condition     = var.edge_rate_limit.requests_per_minute_per_client >= 1 && var.edge_rate_limit.requests_per_minute_per_ip >= var.edge_rate_limit.requests_per_minute_per_client && var.edge_rate_limit.ban_seconds >= 60
    error_message = "edge_rate_limit needs a positive per-client limit, a per-IP limit at least as large, and a ban of at least 60 s."
  }
}

variable "webhook_queue" {
  description = "Dispatch and retry settings of the webhook queue (the seed's values by default)."
  type = object({
    max_concurrent_dispatches = number
    max_dispatches_per_second = number
    max_attempts              = number
    min_backoff               = string
    max_backoff               = string
  })
  default = {
    max_concurrent_dispatches = 10
    max_dispatches_per_second = 1
    max_attempts              = 3
    min_backoff               = "10s"
    max_backoff               = "300s"
  }

  validation {
    condition     = var.webhook_queue.max_attempts >= 1 && var.webhook_queue.max_dispatches_per_second > 0 && can(regex("^[0-9]+s$", var.webhook_queue.min_backoff)) && can(regex("^[0-9]+s$", var.webhook_queue.max_backoff))
    error_message = "webhook_queue needs max_attempts >= 1, a positive dispatch rate and backoffs like \"10s\"."
  }
}

variable "notification_channels" {
  description = "Monitoring notification channel ids the alert policies notify."
  type        = list(string)
  default     = []
}

variable "latency_p95_threshold_ms" {
  description = "The project's latency target: alert when the status function's p95 latency stays above this, milliseconds (the seed's 30 s alert covers both public functions)."
  type        = number
  default     = 2000

  validation {
    condition     = var.latency_p95_threshold_ms > 0
    error_message = "latency_p95_threshold_ms must be positive."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key (projects/.../cryptoKeys/...) that encrypts the bucket, images and Cloud Run; null: Google-managed keys."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be a full Cloud KMS key name."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Protect the bucket, database and jobs from terraform destroy."
  type        = bool
  default     = true
}

variable "public_url_map" {
  description = "URL map of the public load balancer, a regular expression (RE2, full match); null: any whose name starts with name_prefix. The dashboard charts its requests beside the functions'."
  type        = string
  default     = null
}

variable "dead_letter_subscription" {
  description = "Pub/Sub subscription on the dead-letter topic of the request intake, watched by the dead-letter alert; null: the one terraform/pubsub.tf creates (PUBSUB_REQUESTS_TOPIC-dead-letter)."
  type        = string
  default     = null

  validation {
    condition     = var.dead_letter_subscription == null || can(regex("^[a-zA-Z][a-zA-Z0-9._~%+-]{2,254}$", var.dead_letter_subscription))
    error_message = "dead_letter_subscription must be a Pub/Sub subscription id."
  }
}

variable "failed_job_ratio" {
  description = "Alert when more than this share of the jobs ended in 30 minutes failed (0-1)."
  type        = number
  default     = 0.2

  validation {
    condition     = var.failed_job_ratio > 0 && var.failed_job_ratio < 1
    error_message = "failed_job_ratio must be between 0 and 1."
  }
}

variable "webhook_backlog_threshold" {
  description = "Alert when more webhook tasks than this stay queued for 10 minutes."
  type        = number
  default     = 100

  validation {
    condition     = var.webhook_backlog_threshold >= 1
    error_message = "webhook_backlog_threshold must be at least 1."
  }
}

variable "build_github" {
  description = "GitHub repository (owner, name) of beatsync, connected to Cloud Build (the Cloud Build GitHub app); a push to its main branch runs cloudbuild.yaml. null: no trigger."
  type = object({
    owner = string
    name  = string
  })
  default = null

  validation {
    condition     = var.build_github == null || (can(regex("^[A-Za-z0-9-]+$", var.build_github.owner)) && can(regex("^[A-Za-z0-9._-]+$", var.build_github.name)))
    error_message = "build_github needs a GitHub owner and repository name."
  }
}

variable "pubsub_requests_topic" {
  description = "Pub/Sub topic the platform publishes create requests to (the seed's beat-sync-requests)."
  type        = string
  default     = "beat-sync-requests"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9._~%+-]{2,200}$", var.pubsub_requests_topic))
    error_message = "pubsub_requests_topic must be a valid Pub/Sub topic id."
  }
}

variable "pubsub_max_delivery_attempts" {
  description = "Deliveries of one request message before Pub/Sub moves it to the dead-letter topic (5 to 100)."
  type        = number
  default     = 5

  validation {
    condition     = var.pubsub_max_delivery_attempts >= 5 && var.pubsub_max_delivery_attempts <= 100
    error_message = "pubsub_max_delivery_attempts must be between 5 and 100 (Pub/Sub's limits)."
  }
}

variable "pubsub_publisher_members" {
  description = "IAM members allowed to publish create requests to the requests topic (serviceAccount:...)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.pubsub_publisher_members : can(regex("^(serviceAccount|user|group|domain):", m))])
    error_message = "pubsub_publisher_members must be serviceAccount:, user:, group: or domain: members; never allUsers."
  }
}

variable "end_pending_sweep_schedule" {
  description = "Cron schedule (UTC) of the sweep that finishes job ends left pending by a killed instance (scheduler.tf)."
  type        = string
  default     = "*/10 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.end_pending_sweep_schedule))) == 5
    error_message = "end_pending_sweep_schedule must be a five-field cron expression."
  }
}

variable "end_pending_sweep_age_seconds" {
  description = "The sweep finishes a job's pending end only once the end is this many seconds old (the process that ended it may still be finishing before)."
  type        = number
  default     = 600

  validation {
    condition     = var.end_pending_sweep_age_seconds >= 60 && var.end_pending_sweep_age_seconds <= 2592000
    error_message = "end_pending_sweep_age_seconds must be from 60 to 2592000 (30 days)."
  }
}
