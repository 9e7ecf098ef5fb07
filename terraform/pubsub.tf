# Pub/Sub: the seed's "Option 3" intake and the job events.
#   beat-sync-requests      the platform publishes create requests here (its members: pubsub_publisher_members)
#   push subscription       delivers them to the submit function's push route with an OIDC token of
#                           the push account; retried with backoff; after pubsub_max_delivery_attempts
#                           a message goes to the dead-letter topic
#   ...-dead-letter         unprocessable messages: published by the service itself with the reason
#                           (beatsync_error_code / beatsync_error_message attributes), or by Pub/Sub
#                           after the attempts ran out; kept on a pull subscription for operators
#   ...-events              the job events (processing, completed, failed, cancelled) of requests
#                           whose callback_topic names it; ordering key = job id
# The service's side: src/beatsync/jobs/intake.py, docs/pubsub.md.

locals {
  # the push audience is the function's cloudfunctions.net URL (known before the function exists, so
  # the function can be told its own audience without a dependency cycle); the push goes to the same URL
  pubsub_push_audience = "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.submit_name}"

  # the submit function's settings for the push route (merged into its environment in functions.tf)
  pubsub_intake_env = {
    BEATSYNC_PUBSUB_PUSH_AUDIENCE        = local.pubsub_push_audience
    BEATSYNC_PUBSUB_PUSH_SERVICE_ACCOUNT = google_service_account.pubsub_push.email
    BEATSYNC_PUBSUB_DEAD_LETTER_TOPIC    = google_pubsub_topic.dead_letter.id
  }

  # components that publish job events: those that move jobs to processing or end them
  event_publishers = toset(["status", "analyze", "compose"])
  pubsub_agent     = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_project_service" "pubsub" {
  project            = var.project_id
  service            = "pubsub.googleapis.com"
  disable_on_destroy = false
}

resource "google_pubsub_topic" "requests" {
  project                    = var.project_id
  name                       = var.pubsub_requests_topic
  kms_key_name               = var.kms_key_name
  message_retention_duration = "86400s"
  labels                     = local.labels

  depends_on = [google_project_service.pubsub]
}

resource "google_pubsub_topic" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.pubsub_requests_topic}-dead-letter"
  kms_key_name               = var.kms_key_name
  message_retention_duration = "604800s"
  labels                     = local.labels

  depends_on = [google_project_service.pubsub]
}

resource "google_pubsub_topic" "events" {
  project                    = var.project_id
  name                       = "${var.name_prefix}-events"
  kms_key_name               = var.kms_key_name
  message_retention_duration = "86400s"
  labels                     = local.labels

  depends_on = [google_project_service.pubsub]
}

# the identity whose OIDC token the push requests carry
resource "google_service_account" "pubsub_push" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-pubsub-push"
  display_name = "beatsync Pub/Sub push (OIDC identity of the intake subscription)"
}

resource "google_pubsub_subscription" "requests_push" {
  project                    = var.project_id
  name                       = "${var.pubsub_requests_topic}-push"
  topic                      = google_pubsub_topic.requests.id
  ack_deadline_seconds       = 60
  message_retention_duration = "86400s"
  labels                     = local.labels

  push_config {
    push_endpoint = "${local.pubsub_push_audience}/api/v1/beat-sync/pubsub/push"

    oidc_token {
      service_account_email = google_service_account.pubsub_push.email
      audience              = local.pubsub_push_audience
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.pubsub_max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_pubsub_topic_iam_member.agent_dead_letters, google_service_account_iam_member.agent_mints_push_tokens]
}

resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.pubsub_requests_topic}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  labels                     = local.labels

  expiration_policy {
    ttl = ""
  }
}

# no invoker grant of its own: the submit function is invokable by allUsers (terraform/functions.tf:
# API-key callers have no Google identity), and the service verifies the push token itself
# (audience and the push account's email); Pub/Sub push counts as internal traffic for the
# function's ingress setting

# Pub/Sub's service agent mints the push tokens, forwards dead letters and acknowledges them
resource "google_service_account_iam_member" "agent_mints_push_tokens" {
  service_account_id = google_service_account.pubsub_push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "agent_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_acks_dead_letters" {
  project      = var.project_id
  subscription = google_pubsub_subscription.requests_push.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# the submit function dead-letters unprocessable messages itself, with the reason
resource "google_pubsub_topic_iam_member" "submit_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.this["submit"].email}"
}

resource "google_pubsub_topic_iam_member" "events" {
  for_each = local.event_publishers

  project = var.project_id
  topic   = google_pubsub_topic.events.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.this[each.value].email}"
}

# the platform's apps that publish requests
resource "google_pubsub_topic_iam_member" "requesters" {
  for_each = toset(var.pubsub_publisher_members)

  project = var.project_id
  topic   = google_pubsub_topic.requests.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}
