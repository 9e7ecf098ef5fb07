# The one public URL: a global external Application Load Balancer (HTTPS, Google-managed
# certificate for var.domain, HTTP redirected to HTTPS) whose URL map sends each public route of
# the OpenAPI document to the function that serves it, through serverless NEGs. Cloud Armor
# (armor.tf) guards both backends. The functions accept traffic only from this load balancer
# (ingress ALLOW_INTERNAL_AND_GCLB), so every request passes the edge policy.

locals {
  api_url = "https://${var.domain}"

  # function => serverless NEG => backend service
  public_functions = {
    submit = google_cloudfunctions2_function.submit.name
    status = google_cloudfunctions2_function.status.name
  }
}

resource "google_compute_global_address" "api" {
  project    = var.project_id
  name       = "${var.name_prefix}-api"
  ip_version = "IPV4"

  depends_on = [google_project_service.this]
}

resource "google_compute_region_network_endpoint_group" "functions" {
  for_each = local.public_functions

  project               = var.project_id
  name                  = "${var.name_prefix}-${each.key}-neg"
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  # a 2nd gen function is a Cloud Run service of the same name
  cloud_run {
    service = each.value
  }
}

resource "google_compute_backend_service" "functions" {
  for_each = local.public_functions

  project               = var.project_id
  name                  = "${var.name_prefix}-${each.key}"
  description           = "beatsync ${each.key} function"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  security_policy       = google_compute_security_policy.api.id

  backend {
    group = google_compute_region_network_endpoint_group.functions[each.key].id
  }

  log_config {
    enable      = true
    sample_rate = 1.0
  }
}

# Longest path wins (a path ending in /* is a prefix). POST /analyze and POST /create go to submit;
# everything else of the public API (status, cancel, list, logs, presets, transitions, /, /health,
# /openapi.json) goes to status. tests/unit/test_deploy.py checks every OpenAPI route against it.
resource "google_compute_url_map" "api" {
  project         = var.project_id
  name            = "${var.name_prefix}-api"
  description     = "beatsync public API: one base URL, routed by path"
  default_service = google_compute_backend_service.functions["status"].id

  host_rule {
    hosts        = [var.domain]
    path_matcher = "api"
  }

  path_matcher {
    name            = "api"
    default_service = google_compute_backend_service.functions["status"].id

    path_rule {
      paths   = ["/api/v1/beat-sync/analyze", "/api/v1/beat-sync/create", "/api/v1/beat-sync/uploads", "/api/v1/beat-sync/pubsub/push"]
      service = google_compute_backend_service.functions["submit"].id
    }

    path_rule {
      paths   = ["/api/v1/beat-sync/analyze/*", "/api/v1/beat-sync/create/*", "/api/v1/beat-sync/jobs", "/api/v1/beat-sync/jobs/*", "/api/v1/beat-sync/presets", "/api/v1/beat-sync/transitions", "/api/v1/beat-sync/admin/stats", "/health", "/openapi.json", "/docs", "/docs/*", "/redoc", "/redoc/*"]
      service = google_compute_backend_service.functions["status"].id
    }
  }
}

resource "google_compute_managed_ssl_certificate" "api" {
  project = var.project_id
  name    = "${var.name_prefix}-api"

  managed {
    domains = [var.domain]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_ssl_policy" "api" {
  project         = var.project_id
  name            = "${var.name_prefix}-api"
  profile         = "RESTRICTED"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "api" {
  project          = var.project_id
  name             = "${var.name_prefix}-api"
  url_map          = google_compute_url_map.api.id
  ssl_certificates = [google_compute_managed_ssl_certificate.api.id]
  ssl_policy       = google_compute_ssl_policy.api.id
}

resource "google_compute_global_forwarding_rule" "https" {
  project               = var.project_id
  name                  = "${var.name_prefix}-api-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.api.id
  port_range            = "443"
  target                = google_compute_target_https_proxy.api.id
  labels                = local.labels
}

# plain HTTP answers only with a redirect to HTTPS (308 keeps the method and the body)
resource "google_compute_url_map" "http_redirect" {
  project     = var.project_id
  name        = "${var.name_prefix}-api-http"
  description = "beatsync: HTTP to HTTPS"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "PERMANENT_REDIRECT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "http_redirect" {
  project = var.project_id
  name    = "${var.name_prefix}-api-http"
  url_map = google_compute_url_map.http_redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  project               = var.project_id
  name                  = "${var.name_prefix}-api-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.api.id
  port_range            = "80"
  target                = google_compute_target_http_proxy.http_redirect.id
  labels                = local.labels
}

# The functions sit behind the load balancer only. Cloud Run IAM cannot check the callers here:
# API-key callers have no Google identity, and ID tokens carry the public URL as audience; so the
# invoker check is left to the service (every API route verifies the caller; see identity.tf),
# and ingress admits only this load balancer.
resource "google_cloud_run_service_iam_member" "public" {
  # checkov:skip=CKV_GCP_102: ingress is internal-and-load-balancer only; the service verifies every API caller (ID token or API key)
  for_each = local.public_functions

  project  = var.project_id
  location = var.region
  service  = each.value
  role     = "roles/run.invoker"
  member   = "allUsers"
}

output "api_url" {
  description = "The one public base URL of the API (BEAT_SYNC_SERVICE_URL for the platform's clients, and the ID-token audience)."
  value       = local.api_url
}

output "api_ip_address" {
  description = "Address the domain's DNS A record must point to (the managed certificate is issued once it does)."
  value       = google_compute_global_address.api.address
}
