"""Delivery to LaunchDarkly's metric event import: exactly once through crashes and
faults, a 401 as a dead letter that says what to do, and a replay."""

from __future__ import annotations

import gzip
import time

import pytest
from django.urls import reverse

from connector.connections.models import LaunchDarklyConnection, Status
from connector.imports import delivery
from connector.imports.models import BatchStatus, ImportBatch
from connector.launchdarkly import instances
from connector.launchdarkly.client import EventImportClient
from tenants.scope import tenant_scope
from tests.imports.conftest import occurrence
from tests.imports.test_track import drain_all


def batches(workspace):
    with tenant_scope(workspace):
        return list(ImportBatch.objects.order_by("id"))


@pytest.mark.django_db
def test_batch_rebuilt_after_a_crash__same_payload_id__counted_once(importing, workspace):
    """Contract EVT-8: a worker sent the batch and died before recording it; the next
    drain rebuilds it from the same rows, so the payload id is the same and LaunchDarkly
    counts it once."""
    importing.track([occurrence("signup", f"u-{i}") for i in range(30)])
    with tenant_scope(workspace):
        batch = delivery.batch_cut("production", "default")
        rows = delivery._rows(batch)
        body = delivery._payload(b for _, _, b in rows)
        EventImportClient(
            base_url=instances.events_base_url("commercial"),
            token=importing.connection.access_token(),
        ).import_payload("default", "production", gzip.compress(body), payload_id=batch.payload_id)

    drain_all(workspace)

    report = importing.ld.events()
    assert importing.imported() == {"signup": 30}
    assert report["duplicate_payloads"] == 1
    (settled,) = batches(workspace)
    assert settled.status == BatchStatus.DELIVERED and settled.count == 30


@pytest.mark.django_db
def test_faults_during_delivery__every_occurrence_delivered_exactly_once(
    importing, workspace, settings
):
    """Contract EVT-1, EVT-8: 5xx, slow, cut-short and dropped answers during delivery;
    whatever was sent twice is deduplicated by payload id."""
    settings.IMPORT_BACKOFF_CAP_S = 0.05
    settings.SYNC_READ_TIMEOUT_S = 0.5
    delivery_route = ["POST /v2/event-data-import/*"]
    importing.ld.set_faults(
        rate=0.5,
        kinds=["500", "503", "slow", "truncated", "drop"],
        routes=delivery_route,
        slow_ms=1500,
    )
    settings.IMPORT_BATCH_EVENTS = 40  # many batches, many faults
    accepted = 0
    for start in range(0, 400, 100):
        answer = importing.track(
            [occurrence("signup", f"u-{i}") for i in range(start, start + 100)]
        )
        accepted += answer.json()["counts"]["accepted"]
    for _ in range(200):
        drain_all(workspace)
        if all(b.status == BatchStatus.DELIVERED for b in batches(workspace)):
            break
        time.sleep(0.05)
    importing.ld.set_faults(rate=0)

    assert accepted == 400
    assert importing.imported() == {"signup": 400}
    assert {b.status for b in batches(workspace)} == {BatchStatus.DELIVERED}
    sent = [
        r for r in importing.ld.requests_since(0) if r["path"].startswith("/v2/event-data-import/")
    ]
    assert len(sent) > len(batches(workspace))  # faults did force resends


@pytest.mark.django_db
def test_token_cannot_import__dead_letter_says_so__replayed_after_a_good_token(
    importing, workspace, admin
):
    """Contract EVT-2: a 401 from the import is a dead letter with what to do, never a
    retry and never a broken connection; replaying after pasting a token that allows
    importEventData delivers the same batch."""
    client = importing.client
    url = reverse("connections:import_token", args=[workspace.slug])
    client.post(url, {"token": importing.ld.mint_token("reader")})
    importing.track([occurrence("signup", f"u-{i}") for i in range(5)])

    drain_all(workspace)

    (batch,) = batches(workspace)
    assert batch.status == BatchStatus.DEAD and batch.last_http_status == 401
    assert "This token cannot import events" in batch.error_message
    attempts = [r for r in importing.ld.requests_since(0) if "event-data-import" in r["path"]]
    assert len(attempts) == 1  # not retried
    connection = LaunchDarklyConnection.objects.unscoped().get(tenant=workspace)
    assert connection.status == Status.ACTIVE
    page = client.get(reverse("imports:status", args=[workspace.slug])).content.decode()
    assert "This token cannot import events" in page and "Replay" in page

    good = importing.ld.mint_token("reader", permissions=["importEventData"])
    client.post(url, {"token": good})
    settings_page = client.get(reverse("connections:settings", args=[workspace.slug]))
    assert "May import events" in settings_page.content.decode()
    client.post(reverse("imports:replay", args=[workspace.slug, batch.pk]))
    drain_all(workspace)

    assert batches(workspace)[0].status == BatchStatus.DELIVERED
    assert importing.imported() == {"signup": 5}


@pytest.mark.django_db
def test_status_page__figures_per_environment_and_event(importing, workspace):
    importing.track(
        [occurrence("signup"), occurrence("checkout"), occurrence("page_view"), {"event": ""}]
    )
    drain_all(workspace)

    page = " ".join(
        importing.client.get(reverse("imports:status", args=[workspace.slug]))
        .content.decode()
        .split()
    )

    assert "<dt>Received</dt><dd>3</dd>" in page
    assert "<dt>Refused</dt><dd>1</dd>" in page
    assert "<dt>Delivered</dt><dd>2</dd>" in page
    assert '<td><code>production</code></td><td class="num">0</td><td class="num">2</td>' in page
    assert "median ≤" in page


@pytest.mark.django_db
def test_settings__identities_and_environments_saved_bad_kind_refused(importing, workspace):
    url = reverse("imports:settings", args=[workspace.slug])
    page = importing.client.get(url).content.decode()
    assert 'value="production"' in page and 'value="test"' in page

    bad = importing.client.post(
        url,
        {
            "environments": ["test"],
            "identities": "user_id = team",
            "unknown_events": "refuse",
            "max_age_hours": 24,
        },
    )
    assert bad.status_code == 400 and "team is not a context kind" in bad.content.decode()

    importing.client.post(
        url,
        {
            "environments": ["production", "test"],
            "identities": "uid = user\nacct -> organization",
            "unknown_events": "refuse",
            "max_age_hours": 12,
        },
    )
    with tenant_scope(workspace):
        from connector.imports.ingest import import_settings

        row = import_settings()
    assert row.environments == ["production", "test"]
    assert row.identity_map == {"uid": "user", "acct": "organization"}
    assert row.max_age_hours == 12


@pytest.mark.django_db
def test_prometheus__import_figures_move_with_a_delivery(importing, workspace, settings):
    settings.METRICS_TOKEN = "scrape-token-" + "x" * 20

    def scrape():
        response = importing.client.get(
            "/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"}
        )
        assert response.status_code == 200
        return response.content.decode()

    importing.track([occurrence("signup"), occurrence("page_view"), {"event": ""}])
    before = scrape()
    drain_all(workspace)
    after = scrape()

    slug = workspace.slug
    family = "connector_import_occurrences_total"
    received = f'{family}{{environment="",outcome="received",workspace="{slug}"}} 2.0'
    refused = f'{family}{{environment="",outcome="refused",workspace="{slug}"}} 1.0'
    assert received in before and refused in before
    assert f'connector_import_pending{{environment="production",workspace="{slug}"}} 1.0' in before
    delivered = (
        f'connector_import_occurrences_total{{environment="production",outcome="delivered",'
        f'workspace="{slug}"}} 1.0'
    )
    assert delivered not in before and delivered in after
    assert f'connector_import_pending{{environment="production",workspace="{slug}"}} 0.0' in after
    assert "connector_import_delivery_delay_seconds{" in after
