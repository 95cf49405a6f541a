"""eventDefault: whether units that sent no event count as 0 in a numeric metric."""

import pytest

from connector.metrics.desired import (
    default_event_default,
    differences,
    fingerprint,
    is_duration_unit,
    json_patch,
    metric_body,
)
from connector.metrics.models import EventDefault, MappingStatus, MetricKind, MetricMapping
from connector.sync import services
from tenants.scope import tenant_scope
from tests.sync.conftest import apply_plan, make_events, sandbox_metrics


def mapping(kind=MetricKind.NUMERIC, **fields):
    numeric = kind == MetricKind.NUMERIC
    return MetricMapping(
        kind=kind,
        metric_key="page-load",
        name="Page load",
        unit="ms" if numeric else "",
        success_criteria="LowerThanBaseline" if numeric else "",
        randomization_units=["user"],
        **fields,
    )


# Bodies as metric_body made them before eventDefault existed, and their fingerprints
# then: the desired_hash and applied_hash of every mapping applied before this change.
OLD_NUMERIC = {
    "key": "page-load",
    "name": "Page load",
    "description": "",
    "kind": "custom",
    "eventKey": "page_load",
    "isNumeric": True,
    "unit": "ms",
    "successCriteria": "LowerThanBaseline",
    "unitAggregationType": "average",
    "analysisType": "mean",
    "randomizationUnits": ["user"],
    "tags": ["managed-by-metric-connector"],
}
OLD_NUMERIC_FINGERPRINT = "1b1a3f95b45aac09dbe61feeeb3c8e399e5e05b5f1f38a5e93ce66e310f8cd84"
OLD_CONVERSION = {
    "key": "signup",
    "name": "Signup",
    "description": "x",
    "kind": "custom",
    "eventKey": "signup",
    "isNumeric": False,
    "unitAggregationType": "average",
    "randomizationUnits": ["user"],
    "tags": ["managed-by-metric-connector"],
}
OLD_CONVERSION_FINGERPRINT = "23e7a4f4584f1b2310c4289ac7a40924a1455a25a74dedda726d756569712479"


def test_metric_body__numeric__sends_event_default_per_choice():
    """Contract MET-EVENTDEFAULT-1: MetricPost's eventDefault {disabled, value: 0}:
    disabled false counts units without events as 0, disabled true leaves them out."""
    included = metric_body(mapping(), event_key="page_load")
    excluded = metric_body(mapping(event_default=EventDefault.EXCLUDE), event_key="page_load")

    assert included["eventDefault"] == {"disabled": False, "value": 0}
    assert excluded["eventDefault"] == {"disabled": True, "value": 0}


@pytest.mark.parametrize("kind", [MetricKind.BINARY, MetricKind.COUNT])
def test_metric_body__conversion__no_event_default(kind):
    """Contract MET-EVENTDEFAULT-1: a conversion metric counts a unit without the
    event as not converted; eventDefault is not sent for it, whatever the mapping says."""
    body = metric_body(mapping(kind, event_default=EventDefault.EXCLUDE), event_key="signup")

    assert "eventDefault" not in body


def test_fingerprint__metrics_applied_before_event_default__unchanged():
    """Contract MET-EVENTDEFAULT-1: a metric without eventDefault has LaunchDarkly's
    default (disabled false), so mappings applied before the connector sent it keep
    their fingerprints and do not all look drifted."""
    assert fingerprint(OLD_NUMERIC) == OLD_NUMERIC_FINGERPRINT
    assert fingerprint(OLD_CONVERSION) == OLD_CONVERSION_FINGERPRINT
    new_body = metric_body(mapping(), event_key="page_load")
    assert fingerprint(new_body) == OLD_NUMERIC_FINGERPRINT
    assert differences(new_body, OLD_NUMERIC) == {}
    # LaunchDarkly may answer with the default spelled out; still the same metric.
    spelled_out = {**OLD_NUMERIC, "eventDefault": {"disabled": False, "value": 0}}
    assert fingerprint(spelled_out) == OLD_NUMERIC_FINGERPRINT


def test_fingerprint__exclude__differs_and_patched():
    """Contract MET-EVENTDEFAULT-1: leaving units out is a managed difference, and the
    patch sets it (`add` where LaunchDarkly has no eventDefault, `replace` where it has)."""
    excluded = metric_body(mapping(event_default=EventDefault.EXCLUDE), event_key="page_load")

    assert fingerprint(excluded) != OLD_NUMERIC_FINGERPRINT
    assert set(differences(excluded, OLD_NUMERIC)) == {"eventDefault"}
    assert json_patch(excluded, OLD_NUMERIC) == [
        {"op": "add", "path": "/eventDefault", "value": {"disabled": True, "value": 0}}
    ]
    spelled_out = {**OLD_NUMERIC, "eventDefault": {"disabled": False, "value": 0}}
    assert json_patch(excluded, spelled_out) == [
        {"op": "replace", "path": "/eventDefault", "value": {"disabled": True, "value": 0}}
    ]
    # And back: including units again is sent explicitly, not as a removal.
    included = metric_body(mapping(), event_key="page_load")
    assert json_patch(included, excluded) == [
        {"op": "replace", "path": "/eventDefault", "value": {"disabled": False, "value": 0}}
    ]


@pytest.mark.parametrize(
    ("kind", "unit", "expected"),
    [
        (MetricKind.NUMERIC, "ms", EventDefault.EXCLUDE),
        (MetricKind.NUMERIC, " Seconds ", EventDefault.EXCLUDE),
        (MetricKind.NUMERIC, "USD", EventDefault.INCLUDE_ZERO),
        (MetricKind.NUMERIC, "", EventDefault.INCLUDE_ZERO),
        (MetricKind.BINARY, "ms", EventDefault.INCLUDE_ZERO),
        (MetricKind.COUNT, "s", EventDefault.INCLUDE_ZERO),
    ],
)
def test_default_event_default__latency_excluded_else_included(kind, unit, expected):
    """Contract MET-EVENTDEFAULT-1: a duration (latency) has no meaningful 0 for a unit
    that sent nothing, so numeric metrics measured in time leave such units out."""
    assert default_event_default(kind, unit) == expected
    assert is_duration_unit(unit) == (unit.strip().lower() in {"ms", "seconds", "s"})


def test_event_default__model_default_include_zero():
    assert MetricMapping().event_default == EventDefault.INCLUDE_ZERO
    assert EventDefault.INCLUDE_ZERO.label == "Units without events count as 0"
    assert EventDefault.EXCLUDE.label == "Units without events are left out"


@pytest.mark.django_db
def test_sync__exclude_mapping__created_with_event_default_and_in_sync(
    client_of, workspace, admin, ld
):
    """Contract MET-EVENTDEFAULT-1: LaunchDarkly (the sandbox) accepts the body's
    eventDefault, and its answer compares equal to what was asked for."""
    from tests.sync.conftest import connect_workspace

    connect_workspace(client_of(admin), workspace, ld)
    events = make_events(workspace, 1, numeric_every=1)
    apply_plan(workspace, admin.user, events)
    with tenant_scope(workspace):
        row = MetricMapping.objects.get()
        assert row.kind == MetricKind.NUMERIC
        row.event_default = EventDefault.EXCLUDE
        row.desired_hash = fingerprint(metric_body(row, event_key=row.source_event.key))
        row.save(update_fields=["event_default", "desired_hash"])
        for _ in range(20):
            ready = services.pump()
            if not ready:
                break
            for item_id in ready:
                services.item_run(item_id=item_id)
        row.refresh_from_db()

    (metric,) = sandbox_metrics(ld)
    assert metric["eventDefault"] == {"disabled": True, "value": 0}
    assert row.status == MappingStatus.SYNCED and row.applied_hash == row.desired_hash
