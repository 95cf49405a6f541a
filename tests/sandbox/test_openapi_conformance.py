"""Every /api/v2 answer the sandbox gives is valid against LaunchDarkly's OpenAPI document.

The `sandbox` fixtures validate each answer as it is sent (conftest.SpecCollector) and
fail the test on any violation; this module proves the checker itself and drives every
operation, success and error statuses, through it.
"""

from __future__ import annotations

import hashlib

import requests

from sandbox.openapi import SPEC_PATH, check_response

SPEC_SHA256 = "0acd0f39cbde1f44da89bdbaed0a6c2be9e111b74dcbc1734febcd1e54def489"
OPERATIONS = {
    "getCallerIdentity",
    "getMember",
    "getProjects",
    "getProject",
    "getEnvironmentsByProject",
    "getContextKindsByProjectKey",
    "getMetrics",
    "postMetric",
    "getMetric",
    "patchMetric",
    "deleteMetric",
    "getExperimentationSettings",
    "putExperimentationSettings",
    "getToken",
}


def test_spec__vendored_copy__unchanged_from_launchdarkly():
    assert hashlib.sha256(SPEC_PATH.read_bytes()).hexdigest() == SPEC_SHA256


def test_spec_checker__invalid_bodies__reported():
    assert check_response("GET", "/api/v2/caller-identity", 200, {"accountId": 7}).errors
    assert check_response("GET", "/api/v2/metrics/p/m", 200, {"key": "m"}).errors
    assert check_response("GET", "/api/v2/metrics/p/m", 404, {"message": "x"}).errors
    assert check_response("GET", "/api/v2/nowhere", 200, {}).errors
    ok = check_response("GET", "/api/v2/metrics/p", 429, {"code": "rate_limited", "message": "m"})
    assert ok.errors == [] and ok.schema.endswith("RateLimitedErrorRep")


def test_spec__every_operation_and_error__valid(sandbox, writer_token, spec_collector):
    base = f"{sandbox.base_url}/api/v2"
    writer = requests.Session()
    writer.headers["Authorization"] = writer_token
    reader = requests.Session()
    reader.headers["Authorization"] = sandbox.mint_token("reader")
    anonymous = requests.Session()
    writer_id = writer.get(f"{base}/caller-identity", timeout=5).json()["tokenId"]
    before = spec_collector.validated.copy()
    settings = {"randomizationUnits": [{"randomizationUnit": "user", "default": True}]}
    metric = {
        "key": "revenue",
        "name": "Revenue",
        "kind": "custom",
        "eventKey": "purchase",
        "isNumeric": True,
        "unit": "USD",
        "successCriteria": "HigherThanBaseline",
        "tags": ["a"],
        "eventDefault": {"disabled": False, "value": 0},
        "filters": {
            "type": "contextAttribute",
            "attribute": "country",
            "op": "in",
            "values": ["JP"],
            "negate": False,
        },
        "dataSource": {"key": "connector", "environmentKey": "production"},
    }
    calls = [
        (writer.get, "/caller-identity", {}),
        (anonymous.get, "/caller-identity", {}),
        (writer.get, "/members/me", {}),
        (writer.get, "/members/000000000000000000000000", {}),
        (writer.get, "/projects?expand=environments&limit=1", {}),
        (writer.get, "/projects?limit=1&offset=1", {}),
        (writer.get, "/projects?filter=bogus:1", {}),
        (writer.get, "/projects/default?expand=environments", {}),
        (writer.get, "/projects/nope", {}),
        (writer.get, "/projects/default/environments?limit=1", {}),
        (writer.get, "/projects/nope/environments", {}),
        (writer.get, "/projects/default/context-kinds", {}),
        (writer.get, "/projects/nope/context-kinds", {}),
        (writer.post, "/metrics/default", {"json": metric}),
        (writer.post, "/metrics/default", {"json": metric}),
        (writer.post, "/metrics/default", {"json": {"key": "x", "kind": "custom"}}),
        (writer.post, "/metrics/nope", {"json": metric}),
        (reader.post, "/metrics/default", {"json": metric}),
        (writer.get, "/metrics/default", {}),
        (writer.get, "/metrics/default?limit=500&filter=query:rev", {}),
        (writer.get, "/metrics/nope", {}),
        (writer.get, "/metrics/default/revenue", {}),
        (writer.get, "/metrics/default/missing", {}),
        (
            writer.patch,
            "/metrics/default/revenue",
            {"json": [{"op": "add", "path": "/tags/-", "value": "b"}]},
        ),
        (
            writer.patch,
            "/metrics/default/revenue",
            {"json": [{"op": "test", "path": "/_version", "value": 1}]},
        ),
        (writer.patch, "/metrics/default/revenue", {"json": {"op": "replace"}}),
        (writer.patch, "/metrics/default/missing", {"json": []}),
        (writer.delete, "/metrics/default/revenue", {}),
        (
            writer.patch,
            "/metrics/default/revenue",
            {"json": [{"op": "replace", "path": "/archived", "value": True}]},
        ),
        (writer.delete, "/metrics/default/revenue", {}),
        (writer.delete, "/metrics/default/revenue", {}),
        (reader.delete, "/metrics/default/revenue", {}),
        (reader.get, "/projects/default/experimentation-settings", {}),
        (reader.get, "/projects/nope/experimentation-settings", {}),
        (writer.put, "/projects/default/experimentation-settings", {"json": settings}),
        (writer.put, "/projects/default/experimentation-settings", {"json": {}}),
        (reader.put, "/projects/default/experimentation-settings", {"json": settings}),
        (writer.get, f"/tokens/{writer_id}", {}),
        (reader.get, f"/tokens/{writer_id}", {}),
        (writer.get, "/tokens/000000000000000000000000", {}),
    ]
    statuses = [
        call(f"{base}{path}", timeout=5, **kwargs).status_code for call, path, kwargs in calls
    ]

    assert statuses == [200, 401, 200, 404, 200, 200, 400, 200, 404, 200, 404, 200, 404,
                        201, 409, 400, 404, 403, 200, 200, 404, 200, 404,
                        200, 409, 400, 404, 400, 200, 204, 404, 403,
                        200, 404, 200, 400, 403, 200, 403, 404]  # fmt: skip
    validated = spec_collector.validated - before
    assert {key.split()[0] for key in validated} == OPERATIONS
    assert sum(validated.values()) == len(calls)
