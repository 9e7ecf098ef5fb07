# Cloud Armor at the one entry (both backends of lb.tf). Rules, first match wins:
#   1000-1001  bodies larger than the service accepts (JSON 1 MiB; a multipart song upload
#              max_input_bytes + 1 MiB) are refused at the edge (deny(403): Cloud Armor has no 413)
#   2000-2007  preconfigured WAF rules at sensitivity 1 (the least false positives), chosen so that
#              JSON bodies full of media URLs and signed-URL query strings pass: rfi (remote file
#              inclusion) is left out because every create request carries URLs by design
#   3000       throttle per client: the key is the source IP together with the Authorization
#              header (enforce_on_key_configs), so one caller behind a shared NAT does not starve
#              another; over the limit: 429
#   3100       rate-based ban per source IP, far above the throttle: a flood is banned for a while
# The service's own per-caller quotas (BEATSYNC_MAX_SUBMISSIONS_PER_MINUTE, _MAX_ACTIVE_JOBS)
# still apply behind it. Cloud Armor keys on the first 128 bytes of a header: for an API key that
# is the key; for a Google ID token it is mostly the token's header, so the IP half of the key
# does the separating there.

locals {
  json_body_limit   = 1048576
  upload_body_limit = var.max_input_bytes + 1048576

  waf_rules = {
    sqli             = { priority = 2000, expr = "evaluatePreconfiguredWaf('sqli-v33-stable', {'sensitivity': 1})" }
    xss              = { priority = 2001, expr = "evaluatePreconfiguredWaf('xss-v33-stable', {'sensitivity': 1})" }
    lfi              = { priority = 2002, expr = "evaluatePreconfiguredWaf('lfi-v33-stable', {'sensitivity': 1})" }
    rce              = { priority = 2003, expr = "evaluatePreconfiguredWaf('rce-v33-stable', {'sensitivity': 1})" }
    scannerdetection = { priority = 2004, expr = "evaluatePreconfiguredWaf('scannerdetection-v33-stable', {'sensitivity': 1})" }
    protocolattack   = { priority = 2005, expr = "evaluatePreconfiguredWaf('protocolattack-v33-stable', {'sensitivity': 1})" }
    sessionfixation  = { priority = 2006, expr = "evaluatePreconfiguredWaf('sessionfixation-v33-stable', {'sensitivity': 1})" }
  }
}

resource "google_compute_security_policy" "api" {
  project     = var.project_id
  name        = "${var.name_prefix}-api"
  description = "beatsync public API: body size, WAF, per-client rate limits"
  type        = "CLOUD_ARMOR"

  advanced_options_config {
    json_parsing = "STANDARD"
    log_level    = "VERBOSE"
  }

  rule {
    action      = "deny(403)"
    priority    = 1000
    description = "JSON bodies over the service's 1 MiB limit"
    match {
      expr {
        expression = "has(request.headers['content-length']) && !(has(request.headers['content-type']) && request.headers['content-type'].lower().startsWith('multipart/')) && int(request.headers['content-length']) > ${local.json_body_limit}"
      }
    }
  }

  rule {
    action      = "deny(403)"
    priority    = 1001
    description = "uploads over max_input_bytes + 1 MiB"
    match {
      expr {
        expression = "has(request.headers['content-length']) && int(request.headers['content-length']) > ${local.upload_body_limit}"
      }
    }
  }

  dynamic "rule" {
    for_each = local.waf_rules
    content {
      action      = "deny(403)"
      priority    = rule.value.priority
      description = "preconfigured WAF: ${rule.key}"
      match {
        expr {
          expression = rule.value.expr
        }
      }
    }
  }

  rule {
    action      = "deny(403)"
    priority    = 2007
    description = "preconfigured WAF: log4j (CVE-2021-44228)"
    match {
      expr {
        expression = "evaluatePreconfiguredWaf('cve-canary')"
      }
    }
  }

  rule {
    action      = "throttle"
    priority    = 3000
    description = "per client (source IP + Authorization): ${var.edge_rate_limit.requests_per_minute_per_client} requests a minute"
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    rate_limit_options {
      conform_action = "allow"
      exceed_action  = "deny(429)"
      rate_limit_threshold {
        count        = var.edge_rate_limit.requests_per_minute_per_client
        interval_sec = 60
      }
      enforce_on_key_configs {
        enforce_on_key_type = "IP"
      }
      enforce_on_key_configs {
        enforce_on_key_type = "HTTP_HEADER"
        enforce_on_key_name = "Authorization"
      }
    }
  }

  rule {
    action      = "rate_based_ban"
    priority    = 3100
    description = "per source IP: over ${var.edge_rate_limit.requests_per_minute_per_ip} a minute, banned for ${var.edge_rate_limit.ban_seconds} s"
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    rate_limit_options {
      conform_action   = "allow"
      exceed_action    = "deny(429)"
      ban_duration_sec = var.edge_rate_limit.ban_seconds
      enforce_on_key   = "IP"
      rate_limit_threshold {
        count        = var.edge_rate_limit.requests_per_minute_per_ip
        interval_sec = 60
      }
    }
  }

  rule {
    action      = "allow"
    priority    = 2147483647
    description = "everything else"
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }

  depends_on = [google_project_service.this]
}
