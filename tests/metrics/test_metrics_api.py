"""`/api/v1/metrics/plan`, `/apply` and `/export` over HTTP with a workspace API key,
each answer checked against the OpenAPI document, and fuzzed by schemathesis."""

import itertools
import json

import jsonschema
import pytest
import schemathesis
import yaml
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from connector.metrics.models import MetricMapping, MetricPlan
from connector.planner.api import DOCUMENT_SCHEMA
from connector.planner.document import MAX_DOCUMENT_BYTES, document_export, document_parse
from connector.sources.models import SourceEvent
from connector.sources.services import api_key_create
from connector.sync.models import SyncRun
from tenants.models import AuditAction, AuditEvent
from tenants.scope import tenant_scope
from tests.sync.conftest import connect_workspace
from tests.sync.test_engine import run_all

pytestmark = pytest.mark.django_db

OPENAPI = "/api/v1/openapi.json"
PLAN, APPLY, EXPORT = "/api/v1/metrics/plan", "/api/v1/metrics/apply", "/api/v1/metrics/export"
YAML = "application/yaml"
FILE = """
version: 1
events:
  - {key: purchase, name: Purchase, kind: numeric, unit: USD, properties: {plan: string}}
  - {key: signup, name: Signup}
metrics:
  - {event: signup, kind: binary}
  - {event: purchase, kind: numeric, filter: "plan = pro", name: Pro purchases}
"""


@pytest.fixture
def raw_key(workspace, owner):
    with tenant_scope(workspace):
        _, raw = api_key_create(actor=owner.user, name="CI pipeline")
    return raw


class Api:
    def __init__(self, client, raw_key):
        self.client, self.raw_key = client, raw_key

    def headers(self):
        return {"Authorization": f"Bearer {self.raw_key}"} if self.raw_key else {}

    def post(self, path, body, content_type=YAML, query=""):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.post(
            path + query, data=data, content_type=content_type, headers=self.headers()
        )

    def get(self, path, params=None):
        return self.client.get(path, params or {}, headers=self.headers())


@pytest.fixture
def api(client, raw_key):
    return Api(client, raw_key)


@pytest.fixture
def document(client):
    return client.get(OPENAPI).json()


@pytest.fixture
def connected(client_of, admin, workspace, ld):
    return connect_workspace(client_of(admin), workspace, ld)


def validate(document, response, path, method):
    """The status is documented for the operation and the body fits its schema."""
    operation = document["paths"][path][method]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path} answered undocumented {status}"
    content = operation["responses"][status]["content"]
    media = response["Content-Type"].split(";")[0]
    assert media in content, (media, list(content))
    body = yaml.safe_load(response.content) if media == YAML else response.json()
    jsonschema.validate(
        body,
        {**content[media]["schema"], "components": document["components"]},
        cls=jsonschema.Draft202012Validator,
    )
    return body


# --- plan ----------------------------------------------------------------------------------


def test_plan__yaml_or_json_body__the_plan_row_by_row(api, document, connected, workspace):
    as_yaml = api.post(PLAN, FILE)
    as_json = api.post(PLAN, {"document": FILE}, content_type="application/json")

    body = validate(document, as_yaml, PLAN, "post")
    assert as_json.json() == body
    assert body["metrics"][0] == {
        "action": "create",
        "key": body["metrics"][0]["key"],
        "name": "Pro purchases",
        "kind": "numeric",
        "event": "purchase",
        "filter": "plan = pro",
        "reason": "",
        "changes": [],
    }
    assert body["metrics"][1]["key"] == "signup-binary"
    assert body["counts"]["metrics"]["create"] == 2
    assert body["events_to_add"] == ["purchase", "signup"]
    assert (body["project"], body["problem"], body["blocked"], body["note"]) == (
        "default",
        "",
        [],
        "",
    )
    with tenant_scope(workspace):  # nothing written
        assert not SourceEvent.objects.exists() and not MetricPlan.objects.exists()


def test_plan__file_with_problems__400_each_with_its_place(api, document):
    answer = api.post(PLAN, "version: 1\nmetrics:\n  - {event: a, kind: gauge, colour: red}\n")

    body = validate(document, answer, PLAN, "post")
    assert body["errors"] == [
        {
            "field": "metrics[0].colour",
            "reason": "unknown key; expected one of: event, kind, key, variant, analysis, "
            "percentile, filter, filters, name, description, success_criteria, "
            "unit_aggregation, randomization_units, tags, event_default",
        },
        {"field": "metrics[0].kind", "reason": "must be binary, count or numeric"},
    ]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        ("version: 1", "text/csv", 415, "Content-Type"),
        ("nope", "application/json", 400, "body"),
        ({"text": "version: 1"}, "application/json", 400, "text"),
        ({"document": 1}, "application/json", 400, "document"),
        (
            {"document": "version: 1", "confirm_in_use": "yes"},
            "application/json",
            400,
            "confirm_in_use",
        ),
        ("version: 1\n# " + "x" * MAX_DOCUMENT_BYTES, YAML, 413, "body"),
        (
            {"document": "version: 1\n# " + "x" * MAX_DOCUMENT_BYTES},
            "application/json",
            413,
            "document",
        ),
        ("version: 1\nx: &a 1\ny: *a", YAML, 400, "line 3, column 4"),
    ],
)
def test_plan__refused_requests__errors_with_the_field(api, body, content_type, status, field):
    answer = api.post(PLAN, body, content_type=content_type)

    assert answer.status_code == status, answer.content
    assert answer.json()["errors"][0]["field"] == field


def test_metrics_api__no_key_401__other_method_405(api_as):
    assert api_as(None).post(PLAN, FILE).status_code == 401
    assert api_as("lmc_wrong").get(EXPORT).status_code == 401


def test_metrics_api__wrong_method__405_json_with_allow(api):
    answer = api.get(PLAN)

    assert answer.status_code == 405
    assert answer["Allow"] == "POST"
    assert answer.json() == {"errors": [{"field": "method", "reason": "use POST"}]}


@pytest.fixture
def api_as(client):
    return lambda raw_key: Api(client, raw_key)


# --- apply ---------------------------------------------------------------------------------


def test_apply__202_plan_on_the_review_page_run_started(
    api, document, connected, workspace, client_of, admin
):
    answer = api.post(APPLY, FILE)

    body = validate(document, answer, APPLY, "post")
    with tenant_scope(workspace):
        plan = MetricPlan.objects.get()
        run = SyncRun.objects.get()
        assert sorted(SourceEvent.objects.values_list("key", flat=True)) == ["purchase", "signup"]
        assert run.started_by is None and plan.created_by is None
        audit = AuditEvent.objects.filter(action=AuditAction.EVENTS_UPSERTED).get()
        assert audit.target == "API key CI pipeline" and audit.actor is None
    assert (body["plan_id"], body["run_id"]) == (plan.pk, run.pk)
    assert body["review_url"].endswith(f"/w/{workspace.slug}/plans/{plan.pk}/")
    assert body["run_url"].endswith(f"/w/{workspace.slug}/sync/runs/{run.pk}/")
    assert body["events_added"] == ["purchase", "signup"]
    assert body["counts"]["metrics"]["create"] == 2
    # The ordinary review page shows the applied plan.
    page = client_of(admin).get(reverse("planner:plan", args=[workspace.slug, plan.pk]))
    assert page.status_code == 200
    assert b"signup-binary" in page.content and b"Applied on" in page.content


def test_apply__metric_in_use__409_until_confirmed(api, document, connected, workspace, ld):
    api.post(APPLY, FILE)
    run_all(workspace)
    ld.set_metric_usage("default", "signup-binary", experiments=1, active_experiments=1)
    renamed = FILE.replace(
        "{event: signup, kind: binary}", "{event: signup, kind: binary, name: Signed up}"
    )

    refused = api.post(APPLY, renamed)
    confirmed = api.post(APPLY, renamed, query="?confirm_in_use=true")

    assert validate(document, refused, APPLY, "post")["errors"][0]["field"] == "confirm_in_use"
    assert "used by experiments" in refused.json()["errors"][0]["reason"]
    assert validate(document, confirmed, APPLY, "post")["counts"]["metrics"]["update"] == 1
    with tenant_scope(workspace):
        assert MetricMapping.objects.get(metric_key="signup-binary").name == "Signed up"


def test_apply__not_connected__409_nothing_written(api, document, workspace):
    answer = api.post(APPLY, {"document": FILE}, content_type="application/json")

    assert validate(document, answer, APPLY, "post")["errors"] == [
        {
            "field": "workspace",
            "reason": "Connect LaunchDarkly first: metrics are created through that connection.",
        }
    ]
    with tenant_scope(workspace):
        assert not SourceEvent.objects.exists() and not MetricPlan.objects.exists()


# --- export --------------------------------------------------------------------------------


def test_export__the_workspace_file_as_yaml(api, document, connected, workspace):
    api.post(APPLY, FILE)

    answer = api.get(EXPORT)

    body = validate(document, answer, EXPORT, "get")
    with tenant_scope(workspace):
        assert answer.content.decode() == document_export()
    assert [m["key"] for m in body["metrics"]][1] == "signup-binary"
    assert len(document_parse(answer.content).metrics) == 2
    jsonschema.validate(body, DOCUMENT_SCHEMA, cls=jsonschema.Draft202012Validator)


# --- the OpenAPI document -------------------------------------------------------------------


def test_openapi__every_metrics_operation_answers_as_documented(
    api, api_as, document, connected, workspace, ld
):
    checked = set()

    def check(response, path, method):
        checked.add((path, method, response.status_code))
        return validate(document, response, path, method)

    check(api.post(PLAN, FILE), PLAN, "post")
    check(api.post(PLAN, "version: 2"), PLAN, "post")
    check(api.post(PLAN, "version: 1\n# " + "x" * MAX_DOCUMENT_BYTES), PLAN, "post")
    check(api.post(PLAN, "version: 1", content_type="text/plain"), PLAN, "post")
    check(api_as(None).post(PLAN, FILE), PLAN, "post")
    check(api.post(APPLY, FILE), APPLY, "post")
    run_all(workspace)
    check(api.post(APPLY, "version: 2"), APPLY, "post")
    check(api.post(APPLY, "version: 1\n# " + "x" * MAX_DOCUMENT_BYTES), APPLY, "post")
    check(api.post(APPLY, "version: 1", content_type="text/plain"), APPLY, "post")
    check(api_as(None).post(APPLY, FILE), APPLY, "post")
    ld.set_metric_usage("default", "signup-binary", experiments=1, active_experiments=1)
    check(api.post(APPLY, FILE.replace("kind: binary}", "kind: binary, tags: [x]}")), APPLY, "post")
    check(api.get(EXPORT), EXPORT, "get")
    check(api.get(EXPORT, {"expand": "all"}), EXPORT, "get")
    check(api_as(None).get(EXPORT), EXPORT, "get")

    documented = {
        (path, method, int(status))
        for path, operations in document["paths"].items()
        if path.startswith("/api/v1/metrics/")
        for method, operation in operations.items()
        for status in operation["responses"]
    }
    assert len(documented) == 14
    assert documented <= checked, f"not exercised: {documented - checked}"


@pytest.fixture
def wsgi_app():
    """Django's WSGI app in-process, inside the test's transaction (see tests/sources)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_openapi__schemathesis__metrics_operations_no_server_error_and_conform(
    raw_key,
    connected,
    wsgi_app,  # connected first: its test client must not follow wsgi_app
):
    schema = schemathesis.openapi.from_wsgi(OPENAPI, wsgi_app)
    headers = {"Authorization": f"Bearer {raw_key}"}
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
    ]
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path.startswith("/api/v1/metrics/")
    ]
    assert len(operations) == 3
    statuses: dict[str, set[int]] = {}
    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            response = case.call_and_validate(headers=headers, checks=checks)
            statuses.setdefault(f"{mode.value} {operation.label}", set()).add(response.status_code)

        fuzz()
    print(statuses)
    # Generated files reach the success paths too, not only the refusals.
    assert {200} <= statuses["positive POST /api/v1/metrics/plan"], statuses
    assert {202} <= statuses["positive POST /api/v1/metrics/apply"], statuses
    assert statuses["positive GET /api/v1/metrics/export"] == {200}, statuses
