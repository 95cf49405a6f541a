"""An accepted occurrence of an event whose metrics filter on properties carries, in its
LaunchDarkly body's `data`, the properties those filters read, and nothing else: the
filters of LaunchDarkly's custom metrics read flat top-level keys of `data`
(shared/launchdarkly/README.md, "Event filters"); whatever else the product sends
stays here."""

from __future__ import annotations

import gzip
import json

import pytest

from connector.imports.models import Occurrence
from connector.metrics.filters import filter_digest
from connector.metrics.models import MappingStatus, MetricKind, MetricMapping
from connector.sources.models import SourceEvent
from sandbox.testing import RunningSandbox
from tenants.scope import tenant_scope
from tests.conftest import point_settings_at
from tests.factories import TenantFactory
from tests.imports.conftest import NUMERIC, occurrence
from tests.imports.test_track import drain_all

pytestmark = pytest.mark.django_db
IMPORT_PATH = "/v2/event-data-import/"


@pytest.fixture
def delivered():
    """Every event body the sandbox accepted (202) on its event import route."""
    return []


@pytest.fixture
def ld(settings, delivered):
    """The sandbox, observed: the `importing` fixture runs against this one."""

    def record(request, response):
        if request.path.startswith(IMPORT_PATH) and response.status == 202:
            body = request.body
            if request.header("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            delivered.extend(json.loads(body))

    with RunningSandbox(observer=record) as sandbox:
        point_settings_at(sandbox, settings)
        yield sandbox


def filtered_mapping(workspace, event_key, conditions, *, status=MappingStatus.PENDING):
    """A metric of the event that counts only the occurrences passing `conditions`, as
    the planner stores one (its variant is the filter's digest)."""
    with tenant_scope(workspace):
        event = SourceEvent.objects.get(key=event_key)
        variant = filter_digest(conditions)
        return MetricMapping.objects.create(
            source_event=event,
            kind=MetricKind.COUNT,
            variant=variant,
            filters=conditions,
            project_key="default",
            metric_key=f"{event_key}-count-{variant}",
            name=f"{event_key} ({variant})",
            desired_hash="x",
            status=status,
        )


PLAN_IS_PRO = [{"property": "plan", "op": "=", "values": ["pro"]}]
SENT = {"plan": "pro", "email": "ada@example.com", "amount": 12.5, "trial": False}


def bodies_of(delivered, key):
    return [body for body in delivered if body["key"] == key]


def test_track__event_with_a_filtered_metric__delivered_with_only_the_filtered_property(
    importing, workspace, delivered
):
    filtered_mapping(workspace, "checkout", PLAN_IS_PRO)

    answer = importing.track([occurrence("checkout", "u-1", properties=SENT)])
    assert answer.json()["counts"]["accepted"] == 1
    drain_all(workspace)

    [body] = bodies_of(delivered, "checkout")
    assert body["data"] == {"plan": "pro"}
    assert set(body) == {"kind", "key", "creationDate", "contextKeys", "data"}
    assert importing.imported() == {"checkout": 1}  # counted by the event's metric


def test_track__event_whose_metrics_do_not_filter__delivered_without_data(
    importing, workspace, delivered
):
    filtered_mapping(workspace, "checkout", PLAN_IS_PRO)  # another event's metric

    importing.track([occurrence("signup", "u-1", properties=SENT)])
    drain_all(workspace)

    [body] = bodies_of(delivered, "signup")
    assert "data" not in body


def test_track__filters_of_several_metrics__their_properties_together_when_flat(
    importing, workspace, delivered
):
    filtered_mapping(workspace, NUMERIC, [{"property": "plan", "op": "=", "values": ["pro"]}])
    filtered_mapping(
        workspace,
        NUMERIC,
        [
            {"property": "trial", "op": "=", "values": [False]},
            {"property": "seats", "op": ">", "values": [2]},
        ],
    )
    occurrences = [
        occurrence(NUMERIC, "u-1", value=812, properties={**SENT, "seats": 3}),
        # Not flat, or null: left out; no filtered property at all: no `data`.
        occurrence(NUMERIC, "u-2", value=90, properties={"plan": {"id": "pro"}, "seats": None}),
        occurrence(NUMERIC, "u-3", value=91, properties={"email": "bob@example.com"}),
        occurrence(NUMERIC, "u-4", value=92),
    ]

    assert importing.track(occurrences).json()["counts"]["accepted"] == 4
    drain_all(workspace)

    data = {body["contextKeys"]["user"]: body.get("data") for body in bodies_of(delivered, NUMERIC)}
    assert data == {
        "u-1": {"plan": "pro", "trial": False, "seats": 3},
        "u-2": None,
        "u-3": None,
        "u-4": None,
    }


def test_track__only_a_deleted_filtered_metric__nothing_forwarded(importing, workspace, delivered):
    filtered_mapping(workspace, "checkout", PLAN_IS_PRO, status=MappingStatus.DELETED)

    importing.track([occurrence("checkout", "u-1", properties=SENT)])
    drain_all(workspace)

    [body] = bodies_of(delivered, "checkout")
    assert "data" not in body


def test_track__forwarded_data__stored_in_the_buffer_as_it_is_delivered(importing, workspace):
    """The body is built once, at ingest: a retried batch sends the same bytes."""
    filtered_mapping(workspace, "checkout", PLAN_IS_PRO)

    importing.track([occurrence("checkout", "u-1", properties=SENT)])

    with tenant_scope(workspace):
        [stored] = Occurrence.objects.values_list("body", flat=True)
    assert json.loads(stored)["data"] == {"plan": "pro"}
    assert "ada@example.com" not in stored


def test_track__another_workspaces_catalog_and_metrics__never_read(importing, workspace, delivered):
    """The catalog query names the workspace by hand (ingest._catalog_rows): another
    workspace's event of the same key, its filtered metric and its learned properties
    change nothing here, and this workspace's occurrences teach it nothing."""
    other = TenantFactory()
    with tenant_scope(other):
        SourceEvent.objects.create(key="checkout", properties={"plan": "number"})
        SourceEvent.objects.create(key="only_theirs")
    filtered_mapping(other, "checkout", PLAN_IS_PRO)

    answer = importing.track(
        [
            occurrence("checkout", "u-1", properties=SENT),
            occurrence("only_theirs", "u-2"),
        ]
    ).json()
    drain_all(workspace)

    assert [r["status"] for r in answer["results"]] == ["accepted", "refused"]
    [body] = bodies_of(delivered, "checkout")
    assert "data" not in body
    with tenant_scope(other):
        assert SourceEvent.objects.get(key="checkout").properties == {"plan": "number"}
    with tenant_scope(workspace):
        assert SourceEvent.objects.get(key="checkout").properties["plan"] == "string"


def test_track__filtered_metric_made_by_a_plan__counts_only_what_its_filter_lets_through(
    importing, workspace, admin, ld
):
    """Contract FLT-8: a filtered metric planned and synced like any other, then fed by
    event import: LaunchDarkly (the sandbox) counts for it only the occurrences whose
    forwarded `data` passes its filter, while the event's plain metric counts them all."""
    from tests.sync.conftest import apply_plan
    from tests.sync.test_engine import run_all

    with tenant_scope(workspace):
        event = SourceEvent.objects.get(key="checkout")
        event.properties = {"plan": "string"}
        event.save(update_fields=["properties"])
    apply_plan(workspace, admin.user, [event], filtered=(("checkout", "plan = pro"),))
    run_all(workspace)
    with tenant_scope(workspace):
        filtered = MetricMapping.objects.get(
            source_event=event, filters__isnull=False, variant__startswith="f"
        )
    assert filtered.status == MappingStatus.SYNCED

    plans = ["pro", "free", "pro", "team", "pro"]
    importing.track(
        [occurrence("checkout", f"u-{i}", properties={"plan": p}) for i, p in enumerate(plans)]
    )
    drain_all(workspace)

    counts = ld.metric_event_counts()
    assert counts[filtered.metric_key] == 3
    assert counts["checkout-binary"] == 5
