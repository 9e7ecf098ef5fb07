"""The deployed entry, read from terraform/ with python-hcl2: one public URL whose URL map sends
every public route of the OpenAPI document to a function that serves it, Cloud Armor on it, and
the callers' identity configured on the functions with the API keys kept in Secret Manager."""

from __future__ import annotations

import pytest

from beatsync.http.app import MAX_JSON_BYTES
from tests.deploy import (
    blocks, function_groups, local, openapi_operations, resources, route, route_table, serves, variables)


def _misrouted(table=None) -> list[tuple[str, str, str]]:
    bad = []
    for method, path in openapi_operations():
        fn = route(path, table)
        if not serves(function_groups(fn), method, path):
            bad.append((method, path, fn))
    return bad


def test_every_public_route_reaches_a_function_that_serves_it():
    ops = openapi_operations()
    assert len(ops) >= 11
    assert _misrouted() == []
    assert serves(function_groups(route("/openapi.json")), "GET", "/openapi.json")  # served beside the document
    # both functions are used, and the internal routes are not public
    assert {route(p) for _, p in ops} == {"submit", "status"}
    default, rules = route_table()
    assert not any(p.startswith("/internal") for p, _ in rules) and default == "status"
    assert not serves(function_groups("status"), "POST", "/internal/analyze")


def test_the_route_check_fails_on_a_url_map_without_the_submit_rule():
    default, rules = route_table()
    broken = (default, [(p, fn) for p, fn in rules if fn != "submit"])
    assert ("POST", "/api/v1/beat-sync/create", "status") in _misrouted(broken)
    swapped = ("submit", [(p, fn) for p, fn in rules if fn == "submit"])  # everything else to submit
    assert ("GET", "/api/v1/beat-sync/jobs", "submit") in _misrouted(swapped)


def test_the_router_applies_longest_match_like_the_load_balancer():
    table = ("status", [("/a/create", "submit"), ("/a/create/*", "status"), ("/a/*", "submit")])
    assert route("/a/create", table) == "submit"
    assert route("/a/create/123", table) == "status"
    assert route("/a/other", table) == "submit"
    assert route("/b", table) == "status"


def test_one_https_entry_with_a_managed_certificate_and_an_http_redirect():
    cert = resources("google_compute_managed_ssl_certificate")["api"]
    assert cert["managed"][0]["domains"] == ["${var.domain}"]
    https = resources("google_compute_target_https_proxy")["api"]
    assert https["url_map"] == "${google_compute_url_map.api.id}"
    assert https["ssl_certificates"] == ["${google_compute_managed_ssl_certificate.api.id}"]
    policy = resources("google_compute_ssl_policy")["api"]
    assert policy["min_tls_version"] == "TLS_1_2" and policy["profile"] in ("MODERN", "RESTRICTED")
    rules = resources("google_compute_global_forwarding_rule")
    assert {r["port_range"]: r["target"] for r in rules.values()} == {
        "443": "${google_compute_target_https_proxy.api.id}",
        "80": "${google_compute_target_http_proxy.http_redirect.id}"}
    assert all(r["load_balancing_scheme"] == "EXTERNAL_MANAGED" and
               r["ip_address"] == "${google_compute_global_address.api.id}" for r in rules.values())
    redirect = resources("google_compute_url_map")["http_redirect"]["default_url_redirect"][0]
    assert redirect["https_redirect"] is True and redirect["redirect_response_code"] == "PERMANENT_REDIRECT"
    assert local("api_url") == "https://${var.domain}"
    outputs = {k: v for b in blocks("output") for k, v in b.items()}
    assert outputs["api_url"]["value"] == "${local.api_url}"
    assert not {"submit_url", "status_url"} & set(outputs)  # one URL, not two
    assert variables()["domain"].get("validation")


def test_the_functions_take_traffic_only_from_the_load_balancer():
    for name in ("submit", "status"):
        fn = resources("google_cloudfunctions2_function")[name]
        assert fn["service_config"][0]["ingress_settings"] == "ALLOW_INTERNAL_AND_GCLB"
    public = resources("google_cloud_run_service_iam_member")
    assert set(public) == {"public"} and public["public"]["for_each"] == "${local.public_functions}"
    analyze = resources("google_cloud_run_v2_service")["analyze"]
    assert analyze["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"


def _armor_rules():
    policy = resources("google_compute_security_policy")["api"]
    return policy, {r["priority"]: r for r in policy["rule"]}


def test_cloud_armor_guards_every_backend():
    backends = resources("google_compute_backend_service")["functions"]
    assert backends["security_policy"] == "${google_compute_security_policy.api.id}"
    assert backends["load_balancing_scheme"] == "EXTERNAL_MANAGED" and backends["log_config"][0]["enable"] is True


def test_cloud_armor_body_limits_match_the_service():
    _, rules = _armor_rules()
    json_rule = rules[1000]["match"][0]["expr"][0]["expression"]
    upload_rule = rules[1001]["match"][0]["expr"][0]["expression"]
    assert local("json_body_limit") == MAX_JSON_BYTES
    assert "${local.json_body_limit}" in json_rule and "multipart/" in json_rule
    assert local("upload_body_limit") == f"${{var.max_input_bytes + {MAX_JSON_BYTES}}}"
    assert "${local.upload_body_limit}" in upload_rule
    for expr in (json_rule, upload_rule):
        assert "has(request.headers['content-length'])" in expr  # no header: no evaluation error
    assert rules[1000]["action"] == rules[1001]["action"] == "deny(403)"


def test_cloud_armor_waf_rules_spare_json_bodies_of_urls():
    policy, rules = _armor_rules()
    (dynamic,) = policy["dynamic"]
    waf = local("waf_rules")
    exprs = [w["expr"] for w in waf.values()] + [rules[2007]["match"][0]["expr"][0]["expression"]]
    assert any("sqli" in e for e in exprs) and any("xss" in e for e in exprs)
    assert any("cve-canary" in e for e in exprs)
    assert not any("rfi" in e for e in exprs)  # every create body carries URLs
    for e in exprs:
        assert "cve-canary" in e or "{'sensitivity': 1}" in e, e
    assert dynamic["rule"]["content"][0]["action"] == "deny(403)"
    assert policy["advanced_options_config"][0]["json_parsing"] == "STANDARD"


def test_cloud_armor_rate_limits_per_client_and_per_ip():
    _, rules = _armor_rules()
    throttle = rules[3000]
    assert throttle["action"] == "throttle"
    opts = throttle["rate_limit_options"][0]
    keys = [(k["enforce_on_key_type"], k.get("enforce_on_key_name")) for k in opts["enforce_on_key_configs"]]
    assert keys == [("IP", None), ("HTTP_HEADER", "Authorization")]
    assert opts["exceed_action"] == "deny(429)" and opts["rate_limit_threshold"][0]["interval_sec"] == 60
    ban = rules[3100]
    assert ban["action"] == "rate_based_ban" and ban["rate_limit_options"][0]["enforce_on_key"] == "IP"
    assert rules[2147483647]["action"] == "allow"
    limits = variables()["edge_rate_limit"]["default"]
    assert limits["requests_per_minute_per_ip"] >= limits["requests_per_minute_per_client"]


def test_the_functions_know_their_callers():
    env = local("identity_env")
    # an audience only with callers to honour it (identity fails closed: docs/security.md)
    assert env["BEATSYNC_ID_TOKEN_AUDIENCES"] == '${length(var.id_token_callers) > 0 ? local.api_url : ""}'
    assert env["BEATSYNC_ALLOWED_CALLERS"] == '${join(",", var.id_token_callers)}'
    assert env["BEATSYNC_TRUSTED_CALLERS"] == '${join(",", var.trusted_callers)}'
    assert env["BEATSYNC_REQUIRE_AUTH"] == "true"
    assert "local.identity_env" in local("function_env")
    status_env = resources("google_cloudfunctions2_function")["status"]["service_config"][0]["environment_variables"]
    assert "local.identity_env" in status_env
    for name in ("id_token_callers", "trusted_callers", "domain"):
        assert variables()[name].get("validation"), name


@pytest.mark.parametrize("name", ["submit", "status"])
def test_api_keys_are_mounted_from_secret_manager(name):
    config = resources("google_cloudfunctions2_function")[name]["service_config"][0]
    secrets = {s["key"]: s for s in config["secret_environment_variables"]}
    assert secrets["BEATSYNC_API_KEYS"]["secret"] == "${google_secret_manager_secret.api_keys.secret_id}"
    assert "BEATSYNC_API_KEYS" not in str(config["environment_variables"])
    grants = resources("google_secret_manager_secret_iam_member")["api_keys"]
    assert grants["role"] == "roles/secretmanager.secretAccessor"
    assert grants["for_each"] == '${toset(["submit", "status"])}'


def test_no_secret_value_is_in_the_state_or_an_output():
    assert resources("google_secret_manager_secret_version") == {}
    outputs = {k: v for b in blocks("output") for k, v in b.items()}
    for name, out in outputs.items():
        assert "secret_data" not in str(out["value"]) and "API_KEYS" not in str(out["value"]), name
