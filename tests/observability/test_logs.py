"""Log records: JSON in production format with their context, one line per LaunchDarkly
call without any token, and request ids in and out."""

import io
import json
import logging

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils.module_loading import import_string

from connector.launchdarkly.client import LaunchDarklyClient
from connector.launchdarkly.errors import TransportError
from connector.observability.context import LogContextFilter
from tests.sync.conftest import connect_workspace

CALLS = "connector.launchdarkly.calls"


@pytest.fixture
def json_lines():
    """Records of the root logger, formatted as production formats them (the settings'
    `json` formatter and context filter); the lines written so far, parsed."""
    options = dict(settings.LOGGING["formatters"]["json"])
    formatter = import_string(options.pop("()"))(**options)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(LogContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.django_db
def test_json_logs__request_in_a_workspace__lines_carry_request_id_and_workspace(
    client_of, admin, workspace, ld, json_lines
):
    client = client_of(admin)
    connect_workspace(client, workspace, ld)  # two requests that call LaunchDarkly

    lines = json_lines()
    calls = [line for line in lines if line["logger"] == CALLS]
    requests_ = [line for line in lines if line["logger"] == "connector.request"]
    assert calls and len(requests_) >= 2
    for line in calls + requests_:
        assert line["workspace"] == workspace.slug, line
        assert len(line["request_id"]) == 32, line
        assert {"time", "level", "message"} <= line.keys()
    request_ids = {line["request_id"] for line in requests_}
    assert {line["request_id"] for line in calls} <= request_ids
    assert all(line["route"].startswith("/w/<slug:slug>/") for line in requests_)
    assert workspace.slug not in json.dumps([line["route"] for line in requests_])


@pytest.mark.django_db
def test_json_logs__exception__logged_with_its_traceback(json_lines):
    try:
        raise ZeroDivisionError("for the log")
    except ZeroDivisionError:
        logging.getLogger("connector.test").exception("it broke")
    (line,) = [line for line in json_lines() if line["logger"] == "connector.test"]
    assert line["level"] == "ERROR"
    assert "Traceback" in line["exc_info"] and "ZeroDivisionError: for the log" in line["exc_info"]


@pytest.mark.django_db
def test_request_id__sane_one_sent__kept_and_echoed(client, json_lines):
    response = client.get(reverse("tenants:login"), headers={"X-Request-ID": "lb-4f2a.9:7"})
    assert response["X-Request-ID"] == "lb-4f2a.9:7"
    (line,) = [line for line in json_lines() if line["logger"] == "connector.request"]
    assert line["request_id"] == "lb-4f2a.9:7" and line["status"] == 200
    assert "workspace" not in line


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sent", ["", "has space", "x" * 129, "line\nbreak", '{"forged": 1}', "-leading-dash"]
)
def test_request_id__none_or_unsafe__replaced_by_a_fresh_one(client, sent):
    headers = {"X-Request-ID": sent} if sent else {}
    first = client.get(reverse("tenants:login"), headers=headers)["X-Request-ID"]
    second = client.get(reverse("tenants:login"), headers=headers)["X-Request-ID"]
    assert first != sent and len(first) == 32 and first != second


def test_request_log__secret_in_the_path__never_logged(client, db, json_lines):
    client.get("/invitations/secret-invitation-token-123/")
    text = json.dumps(json_lines())
    assert "secret-invitation-token-123" not in text


# --- LaunchDarkly calls -------------------------------------------------------------------


def test_launchdarkly_call__one_line_with_status_duration_and_no_token(ld, caplog, json_lines):
    token = ld.mint_token("writer")
    client = LaunchDarklyClient(base_url=ld.base_url, token=token, auth_kind="api_token")
    caplog.set_level(logging.INFO, logger=CALLS)

    client.get_caller_identity()

    (record,) = [r for r in caplog.records if r.name == CALLS]
    assert record.levelno == logging.INFO
    assert record.ld_method == "GET" and record.ld_route == "/api/v2/caller-identity"
    assert record.ld_status == "200" and record.duration_ms >= 0
    assert "GET /api/v2/caller-identity 200" in record.getMessage()
    (line,) = [line for line in json_lines() if line["logger"] == CALLS]
    assert line["ld_status"] == "200" and "duration_ms" in line
    assert token not in caplog.text and token not in json.dumps(line)
    assert "Authorization" not in json.dumps(line)


def test_launchdarkly_call__route_template_and_rate_limit_state(ld, caplog):
    ld.set_limits(route_per_10s=5)
    client = LaunchDarklyClient(base_url=ld.base_url, token=ld.mint_token("writer"))
    caplog.set_level(logging.INFO, logger=CALLS)

    client.list_metrics_page("default", limit=5)

    (record,) = [r for r in caplog.records if r.name == CALLS]
    assert record.ld_route == "/api/v2/metrics/{projectKey}"
    assert record.ld_path == "/api/v2/metrics/default"  # no query string
    assert record.ratelimit_route_remaining == 4
    assert record.ratelimit_reset_in_s is not None


def test_launchdarkly_call__no_answer__still_one_line(caplog):
    client = LaunchDarklyClient(base_url="http://127.0.0.1:9", token="api-secret-token-xyz")
    caplog.set_level(logging.INFO, logger=CALLS)

    with pytest.raises(TransportError):
        client.get_caller_identity()

    (record,) = [r for r in caplog.records if r.name == CALLS]
    assert record.ld_status == "error" and record.ld_error == "TransportError"
    assert "api-secret-token-xyz" not in caplog.text


@pytest.mark.django_db
def test_json_logs__sync_item_task__lines_carry_task_item_run_and_workspace(
    connected, workspace, admin, json_lines
):
    from connector.sync import services
    from connector.sync.tasks import sync_item
    from tenants.scope import tenant_scope
    from tests.sync.conftest import apply_plan, make_events

    run = apply_plan(workspace, admin.user, make_events(workspace, 1, numeric_every=0))
    with tenant_scope(workspace):
        (item_id,) = services.pump()
    seen = len(json_lines())

    result = sync_item.apply((workspace.pk, item_id))  # as a worker runs it, in this process

    calls = [line for line in json_lines()[seen:] if line["logger"] == CALLS]
    assert calls
    for line in calls:
        assert line["task_id"] == result.id
        assert (line["item_id"], line["run_id"]) == (item_id, run.pk)
        assert line["workspace"] == workspace.slug
    logging.getLogger("connector.test").info("after the task")  # its context is gone
    (after,) = [line for line in json_lines() if line["logger"] == "connector.test"]
    assert not {"task_id", "item_id", "run_id"} & after.keys()
