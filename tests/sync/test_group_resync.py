"""The periodic resync for metric groups: the connector's groups changed or deleted in
LaunchDarkly are drift, reported or repaired; groups it did not make are never touched;
and a project whose groups cannot be listed (no beta API) still has its metrics resynced."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from connector.metrics.models import MappingStatus, MetricGroup, MetricMapping
from connector.sync.models import Action, DriftPolicy, SyncItem
from connector.sync.resync import resync
from tenants.scope import tenant_scope
from tests.sync.conftest import apply_plan, make_events
from tests.sync.test_group_sync import funnel_of, run_all
from tests.sync.test_resync import ld_call, set_policy, status_page


def ld_beta_call(ld, method, path, **kwargs):
    """A call on a metric-group route, as a person's script would make it."""
    headers = {"Authorization": ld.mint_token("writer"), "LD-API-Version": "beta"}
    answer = requests.request(method, f"{ld.base_url}{path}", headers=headers, timeout=5, **kwargs)
    assert answer.status_code < 300, answer.text
    return answer


def synced_funnels(workspace, admin):
    """Four metrics and two funnels of them, in LaunchDarkly: `first-funnel` of the
    first three, `second-funnel` of the last two."""
    events = make_events(workspace, 4, numeric_every=0)
    funnels = (funnel_of(events[:3], "First funnel"), funnel_of(events[2:], "Second funnel"))
    apply_plan(workspace, admin.user, events, groups=funnels)
    run_all(workspace)
    with tenant_scope(workspace):
        assert set(MetricGroup.objects.values_list("status", flat=True)) == {"synced"}
        return list(MetricMapping.objects.order_by("metric_key"))


def groups_in_ld(ld) -> dict[str, dict]:
    return {g["key"]: g for g in ld.metric_groups()}


def group_drift_by_hand(ld):
    """Someone renames the first funnel in LaunchDarkly and deletes the second."""
    ld_beta_call(
        ld,
        "PATCH",
        "/api/v2/projects/default/metric-groups/first-funnel",
        json=[{"op": "replace", "path": "/name", "value": "Renamed by hand"}],
    )
    ld_beta_call(ld, "DELETE", "/api/v2/projects/default/metric-groups/second-funnel")


def group_states(workspace) -> dict[str, tuple[str, str]]:
    with tenant_scope(workspace):
        return {g.key: (g.status, g.status_detail) for g in MetricGroup.objects.order_by("key")}


@pytest.mark.django_db
def test_group_resync__changed_and_deleted_in_launchdarkly__reported(
    connected, workspace, admin, ld, client_of
):
    """Contract GRP-9, GRP-3: the listing gives each group's managed fields; ours that
    differ from what was applied, or are missing, are drift, reported as such."""
    synced_funnels(workspace, admin)
    group_drift_by_hand(ld)

    with tenant_scope(workspace):
        report = resync()

    assert report.remote_groups == 1 and report.groups_skipped == ""
    assert report.groups_changed == ["first-funnel"]
    assert report.groups_deleted == ["second-funnel"]
    assert report.repair_run is None  # reporting changes nothing in LaunchDarkly
    states = group_states(workspace)
    assert states["first-funnel"] == (
        MappingStatus.DRIFTED,
        'Changed in LaunchDarkly: name: we want "First funnel", LaunchDarkly has "Renamed by hand"',
    )
    assert states["second-funnel"] == (MappingStatus.DRIFTED, "Deleted in LaunchDarkly.")
    assert groups_in_ld(ld)["first-funnel"]["name"] == "Renamed by hand"
    page = status_page(client_of, admin, workspace)
    assert "1 metric group in the project; of ours, 1 changed and 1 deleted there" in page
    assert "Changed in LaunchDarkly: name: we want" in page


@pytest.mark.django_db
def test_group_resync__repair_policy__groups_set_back_and_recreated(
    connected, workspace, admin, ld
):
    """Contract GRP-10, GRP-2: a repair is an update: it patches the changed group
    back and creates the deleted one again; the next resync finds nothing."""
    mappings = synced_funnels(workspace, admin)
    set_policy(workspace, drift_policy=DriftPolicy.REPAIR)
    group_drift_by_hand(ld)

    with tenant_scope(workspace):
        report = resync()
        repairs = list(
            SyncItem.objects.filter(run_id=report.repair_run).values_list("group__key", "action")
        )
    run_all(workspace)

    assert sorted(repairs) == [("first-funnel", Action.UPDATE), ("second-funnel", Action.UPDATE)]
    groups = groups_in_ld(ld)
    assert groups["first-funnel"]["name"] == "First funnel"
    assert [m["key"] for m in groups["second-funnel"]["metrics"]] == [
        m.metric_key for m in mappings[2:]
    ]
    assert {status for status, _ in group_states(workspace).values()} == {MappingStatus.SYNCED}
    with tenant_scope(workspace):
        again = resync()
    assert (again.groups_changed, again.groups_deleted, again.repair_run) == ([], [], None)


@pytest.mark.django_db
def test_group_resync__drift_put_back_by_hand__synced_again(connected, workspace, admin, ld):
    synced_funnels(workspace, admin)
    group_drift_by_hand(ld)
    with tenant_scope(workspace):
        resync()
    ld_beta_call(
        ld,
        "PATCH",
        "/api/v2/projects/default/metric-groups/first-funnel",
        json=[{"op": "replace", "path": "/name", "value": "First funnel"}],
    )

    with tenant_scope(workspace):
        report = resync()

    assert report.groups_changed == [] and group_states(workspace)["first-funnel"] == (
        MappingStatus.SYNCED,
        "",
    )


@pytest.mark.django_db
def test_group_resync__groups_made_by_hand__never_touched(connected, workspace, admin, ld):
    """Contract GRP-2: only the connector's own groups are compared and repaired."""
    mappings = synced_funnels(workspace, admin)
    set_policy(workspace, drift_policy=DriftPolicy.REPAIR)
    ld_beta_call(
        ld,
        "POST",
        "/api/v2/projects/default/metric-groups",
        json={
            "key": "by-hand",
            "name": "By hand",
            "kind": "standard",
            "maintainerId": connected.member_id,
            "tags": [],
            "metrics": [{"key": m.metric_key, "nameInGroup": ""} for m in mappings[:2]],
        },
    )
    before = {key: g["_version"] for key, g in groups_in_ld(ld).items()}

    with tenant_scope(workspace):
        report = resync()
    run_all(workspace)

    assert report.remote_groups == 3 and report.repair_run is None
    assert {key: g["_version"] for key, g in groups_in_ld(ld).items()} == before


# --- a project whose groups cannot be listed ------------------------------------------------


class WithoutBeta:
    """A proxy in front of the sandbox that sends the metric-group routes on without
    `LD-API-Version: beta`, as if the account had no beta API: the sandbox then answers
    those routes 403, exactly as LaunchDarkly does (contract GRP-1). Everything else
    passes through unchanged."""

    def __init__(self, upstream: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                if "/metric-groups" in self.path:
                    headers["LD-API-Version"] = "20240415"
                answer = requests.request(
                    self.command, upstream + self.path, headers=headers, data=body, timeout=10
                )
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def without_beta(ld, settings) -> Iterator[WithoutBeta]:
    """From now on the connector calls LaunchDarkly through WithoutBeta."""
    proxy = WithoutBeta(ld.base_url)
    settings.LAUNCHDARKLY_BASE_URL = proxy.base_url
    yield proxy
    proxy.close()


@pytest.mark.django_db
def test_group_resync__account_without_beta_api__metrics_resynced_groups_skipped(
    connected, workspace, admin, ld, client_of, request
):
    """Contract GRP-1: a beta route answers 403 without the beta version; the groups'
    listing failing so must not stop the metrics' resync, and the report says why."""
    mappings = synced_funnels(workspace, admin)
    ld_call(
        ld,
        "PATCH",
        f"/api/v2/metrics/default/{mappings[0].metric_key}",
        json=[{"op": "replace", "path": "/name", "value": "Renamed by hand"}],
    )
    group_drift_by_hand(ld)
    request.getfixturevalue("without_beta")

    with tenant_scope(workspace):
        report = resync()

    assert report.skipped == "" and report.changed == [mappings[0].metric_key]
    assert "refused to list metric groups (a beta API" in report.groups_skipped
    assert report.groups_changed == report.groups_deleted == []
    # Not looked at, so not marked: what they were stays.
    assert {status for status, _ in group_states(workspace).values()} == {MappingStatus.SYNCED}
    page = status_page(client_of, admin, workspace)
    assert "metric groups not checked: LaunchDarkly refused to list metric groups" in page
    assert "of ours, 1 changed, 0 archived and 0 deleted there" in page


@pytest.mark.django_db
def test_group_resync__group_listing_fails__metrics_resynced_groups_skipped(
    connected, workspace, admin, ld
):
    synced_funnels(workspace, admin)
    ld.set_faults(rate=1, kinds=["503"], routes=["GET /api/v2/projects/default/metric-groups*"])

    with tenant_scope(workspace):
        report = resync()

    assert report.skipped == "" and report.remote_metrics == 4
    assert report.groups_skipped.startswith("LaunchDarkly's metric groups could not be listed")
