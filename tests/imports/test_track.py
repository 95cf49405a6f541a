"""`POST /api/v1/track`: every occurrence checked and answered on its own; the good
ones stored before the answer, then delivered to LaunchDarkly exactly once."""

from __future__ import annotations

import time

import pytest

from connector.imports import delivery
from connector.imports.ingest import import_settings
from connector.imports.models import ImportCount, Occurrence, UnknownEvents
from tenants.scope import tenant_scope
from tests.imports.conftest import NUMERIC, UNMAPPED, occurrence

NOW_MS = lambda: int(time.time() * 1000)  # noqa: E731


def drain_all(workspace, environment="production"):
    with tenant_scope(workspace):
        for _ in range(50):
            report = delivery.drain(environment)
            if not report.more and report.sent == 0:
                return
            if report.wait_until and not report.more:
                time.sleep(max(0, min(report.wait_until - time.time(), 1.0)))


@pytest.mark.django_db
def test_track__mixed_batch__each_bad_one_refused_with_its_reason_good_ones_delivered(
    importing, workspace
):
    good = [
        occurrence("signup", "u-1"),
        occurrence("checkout", "u-2", timestamp=NOW_MS() - 60_000),
        occurrence(NUMERIC, "u-3", value=812.5),
        occurrence(NUMERIC, "u-4", properties={"duration": 95}),  # the event's property
        {"event": "signup", "contexts": {"account_id": "acme"}},  # mapped to organization
    ]
    bad = [
        ({"contexts": {"user_id": "u"}}, "event", "must be a non-empty string"),
        (occurrence("no_such_event"), "event", "is not in the workspace's catalog"),
        (occurrence("signup", contexts=None) | {"contexts": {}}, "contexts", "must map"),
        ({"event": "signup", "contexts": {"user_id": ""}}, "contexts.user_id", "non-empty"),
        ({"event": "signup", "contexts": {"team": "t"}}, "contexts.team", "not a context kind"),
        (
            occurrence(NUMERIC, "u-5"),
            "value (or properties.duration)",
            "is required: the event is numeric",
        ),
        (occurrence(NUMERIC, "u-6", value="fast"), "value", "must be a number"),
        (occurrence(timestamp=NOW_MS() + 3_600_000), "timestamp", "is in the future"),
        (occurrence(timestamp=NOW_MS() - 48 * 3_600_000), "timestamp", "older than 24 hours"),
        (occurrence(timestamp="yesterday"), "timestamp", "not an ISO 8601"),
        ("not an object", "item", "must be an object"),
    ]
    batch = [*good, *(item for item, _, _ in bad)]

    answer = importing.track(batch)

    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["counts"] == {"accepted": 5, "refused": 11, "not_mapped": 0, "counted": 0}
    results = body["results"]
    assert [r["status"] for r in results[:5]] == ["accepted"] * 5
    for result, (_, field, reason) in zip(results[5:], bad, strict=True):
        assert result["status"] == "refused"
        assert result["errors"][0]["field"] == field
        assert reason in result["errors"][0]["reason"], result
    with tenant_scope(workspace):
        assert Occurrence.objects.count() == 5  # stored before the answer

    drain_all(workspace)

    assert importing.imported() == {"signup": 2, "checkout": 1, NUMERIC: 2}


@pytest.mark.django_db
def test_track__event_without_a_metric__not_mapped_counted_not_sent(importing, workspace):
    answer = importing.track([occurrence(UNMAPPED), occurrence(UNMAPPED, "u-2")]).json()

    assert answer["counts"]["not_mapped"] == 2
    with tenant_scope(workspace):
        assert Occurrence.objects.count() == 0
        row = ImportCount.objects.get(event_key=UNMAPPED, environment_key="")
    assert (row.received, row.not_mapped) == (2, 2)


@pytest.mark.django_db
def test_track__unknown_events_counted_per_setting(importing, workspace):
    with tenant_scope(workspace):
        settings_row = import_settings()
        settings_row.unknown_events = UnknownEvents.COUNT
        settings_row.save()

    answer = importing.track([occurrence("brand_new")]).json()

    assert answer["results"][0]["status"] == "counted"
    with tenant_scope(workspace):
        assert Occurrence.objects.count() == 0


@pytest.mark.django_db
def test_track__no_environment_chosen__409_nothing_stored(importing, workspace):
    with tenant_scope(workspace):
        settings_row = import_settings()
        settings_row.environments = []
        settings_row.save()

    answer = importing.track([occurrence()])

    assert answer.status_code == 409
    assert answer.json()["errors"][0]["field"] == "workspace"
    with tenant_scope(workspace):
        assert Occurrence.objects.count() == 0


@pytest.mark.django_db
def test_track__batch_over_1000__refused_whole(importing, workspace):
    answer = importing.track([occurrence()] * 1001)
    assert answer.status_code == 413
    with tenant_scope(workspace):
        assert Occurrence.objects.count() == 0


@pytest.mark.django_db
def test_track__last_seen_of_the_catalog_comes_from_occurrences(importing, workspace):
    from connector.sources.models import SourceEvent

    at = NOW_MS() - 120_000
    importing.track([occurrence("signup", timestamp=at)])

    with tenant_scope(workspace):
        seen = SourceEvent.objects.get(key="signup").last_seen
    assert abs(seen.timestamp() * 1000 - at) < 1000


@pytest.mark.django_db
def test_track__unstorable_strings__refused_not_a_server_error(importing, workspace):
    """Found by schemathesis: a lone surrogate is legal JSON but not UTF-8."""
    answer = importing.track(
        [
            {"event": "sign\udb22up", "contexts": {"user_id": "u"}},
            {"event": "nul\x00", "contexts": {"user_id": "u"}},
            {"event": "signup", "contexts": {"user_id": "u\udb22"}},
        ]
    )

    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["refused", "refused", "refused"]
    assert "lone surrogate" in results[0]["errors"][0]["reason"]


@pytest.mark.django_db
def test_track__event_of_the_wrong_type__refused_not_a_server_error(importing):
    """Found by schemathesis: an event key that is a list or an object."""
    answer = importing.track([{"event": ["a"], "contexts": {"user_id": "u"}}, {"event": {}}])

    assert answer.status_code == 200
    assert [r["status"] for r in answer.json()["results"]] == ["refused", "refused"]
