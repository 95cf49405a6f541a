"""The OpenAPI document at /api/v1/openapi.json describes what the API does: every
documented operation answers as documented, and schemathesis finds no server error."""

import itertools
import json
import re
from urllib.parse import quote

import jsonschema
import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.urls import URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate as validate_spec
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from connector.connections.models import AuthKind, LaunchDarklyConnection, Status
from connector.imports.ingest import context_kinds_cache_key, import_settings
from tenants.scope import tenant_scope

pytestmark = pytest.mark.django_db
OPENAPI = "/api/v1/openapi.json"


@pytest.fixture
def document(client):
    response = client.get(OPENAPI)
    assert response.status_code == 200
    return response.json()


def validate(document, response, path, method):
    """The answer's status is documented for the operation and its body fits the schema."""
    operation = document["paths"][path][method]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path} answered undocumented {status}"
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    resolver_document = {**schema, "components": document["components"]}
    jsonschema.validate(
        response.json(),
        resolver_document,
        cls=jsonschema.Draft202012Validator,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    return response.json()


def test_openapi__document__is_a_valid_openapi_31_document_of_every_api_route(document):
    assert document["openapi"].startswith("3.1")
    schemes = document["components"]["securitySchemes"]
    assert [scheme["scheme"] for scheme in schemes.values()] == ["bearer"]
    assert set(document["paths"]) == {
        "/api/v1/events",
        "/api/v1/events/{key}",
        "/api/v1/events:archive",
        "/api/v1/openapi.json",
        "/api/v1/track",
        "/api/v1/metrics/plan",
        "/api/v1/metrics/apply",
        "/api/v1/metrics/export",
    }
    # Every schema in it is itself valid JSON Schema.
    for name, schema in document["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema), name


def api_routes(resolver=None, prefix=""):
    """Every URL pattern under /api/v1/, as an OpenAPI path template."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from api_routes(entry, route)
        elif route.startswith("api/v1/"):
            yield "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def test_openapi__document__valid_per_openapi_spec_validator_and_covers_every_api_pattern(
    document,
):
    validate_spec(document)
    routes = set(api_routes())
    assert routes, "no URL pattern under /api/v1/"
    assert routes == set(document["paths"])
    for path in routes:
        assert document["paths"][path], f"{path} documents no operation"


def ready_to_import(workspace):
    """A usable connection row, a project and an environment, without LaunchDarkly:
    its context kinds are cached as if it had answered."""
    with tenant_scope(workspace):
        connection = LaunchDarklyConnection(
            instance="commercial",
            auth_kind=AuthKind.API_TOKEN,
            status=Status.ACTIVE,
            account_id="acct",
            project_key="default",
        )
        connection.set_tokens(access_token="api-00000000-0000-0000-0000-000000000000")
        connection.save()
        cache.set(context_kinds_cache_key(connection), ["user"], 600)
        row = import_settings()
        row.environments = ["production"]
        row.save()


def test_openapi__every_operation__answers_as_documented(client, document, api, api_as, workspace):
    checked = set()

    def check(response, path, method):
        checked.add((path, method, response.status_code))
        return validate(document, response, path, method)

    events, one, archive = "/api/v1/events", "/api/v1/events/{key}", "/api/v1/events:archive"
    batch = {
        "events": [
            {"key": "a/b: c", "value_kind": "numeric", "unit": "ms", "last_seen": "2026-01-01"},
            {"key": "plain", "first_seen": "2026-01-01T00:00:00Z", "volume": 3},
            {"key": ""},
        ]
    }
    body = check(api.post(events, batch), events, "post")
    assert body["counts"]["rejected"] == 1
    check(api.post(events, b"nope", raw=True), events, "post")
    check(api.post(events, {"events": [{"key": "x"}] * 1001}), events, "post")
    check(api_as("wrong").post(events, batch), events, "post")
    page = check(api.get(events, {"limit": 1}), events, "get")
    assert page["next_cursor"]
    check(api.get(events, {"limit": 1, "cursor": page["next_cursor"]}), events, "get")
    check(api.get(events, {"limit": 9999}), events, "get")
    check(api_as(None).get(events), events, "get")
    check(api.get(f"/api/v1/events/{quote('a/b: c', safe='')}"), one, "get")
    check(api.get("/api/v1/events/missing"), one, "get")
    check(api.get("/api/v1/events/plain", {"expand": "all"}), one, "get")
    check(api_as(None).get("/api/v1/events/plain"), one, "get")
    check(api.post(archive, {"keys": ["plain", "ghost"]}), archive, "post")
    check(api.post(archive, {"keys": "plain"}), archive, "post")
    check(api.post(archive, {"keys": ["k"] * 1001}), archive, "post")
    check(api_as(None).post(archive, {"keys": ["plain"]}), archive, "post")
    track = "/api/v1/track"
    occurrences = {
        "occurrences": [{"event": "a/b: c", "contexts": {"user": "u"}, "value": 3}, {"event": 1}]
    }
    check(api.post(track, occurrences), track, "post")  # 409: nothing to import into yet
    ready_to_import(workspace)
    body = check(api.post(track, occurrences), track, "post")
    assert [r["status"] for r in body["results"]] == ["not_mapped", "refused"]
    check(api.post(track, b"nope", raw=True), track, "post")
    check(api.post(track, {"occurrences": [{"event": "x"}] * 1001}), track, "post")
    check(api_as(None).post(track, occurrences), track, "post")
    assert json.loads(client.get(OPENAPI).content) == document
    checked.add((OPENAPI, "get", 200))

    documented = {
        (path, method, int(status))
        for path, operations in document["paths"].items()
        # Metrics as code answers YAML too: exercised in tests/metrics/test_metrics_api.py.
        if not path.startswith("/api/v1/metrics/")
        for method, operation in operations.items()
        for status in operation["responses"]
    }
    assert documented <= checked, f"not exercised: {documented - checked}"


@pytest.fixture
def wsgi_app():
    """Django's WSGI app, called in-process inside the test's transaction. Like
    Django's test client, keep the handler from closing the test's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_openapi__schemathesis__no_server_error_and_answers_conform(raw_key, wsgi_app, workspace):
    ready_to_import(workspace)
    schema = schemathesis.openapi.from_wsgi(OPENAPI, wsgi_app)
    headers = {"Authorization": f"Bearer {raw_key}"}
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
    ]
    # Not `negative_data_rejection`: a batch with invalid items is answered 200 with
    # those items rejected one by one (documented), and the fixed Authorization
    # header below undoes schemathesis' header mutations. Negative cases must still
    # get no 5xx and only documented, conforming answers.

    # Metrics as code is fuzzed in tests/metrics/test_metrics_api.py (its apply answers 202).
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if not result.ok().path.startswith("/api/v1/metrics/")
    ]
    assert len(operations) == 5
    statuses: dict[str, set[int]] = {}
    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=60,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            response = case.call_and_validate(headers=headers, checks=checks)
            statuses.setdefault(f"{mode.value} {operation.label}", set()).add(response.status_code)

        fuzz()
    print(statuses)
    # The fuzzing reached each operation's success path, not only its refusals.
    assert all(200 in seen for label, seen in statuses.items() if "positive" in label), statuses
