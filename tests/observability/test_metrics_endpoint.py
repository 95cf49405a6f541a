"""GET /metrics: only for the bearer of METRICS_TOKEN, and per-workspace queue gauges."""

import pytest

from connector.sync.models import ItemStatus
from tests.factories import TenantFactory
from tests.observability.conftest import scrape, value
from tests.sync.factories import make_run

NAMES = (
    "connector_launchdarkly_requests_total",
    "connector_launchdarkly_request_duration_seconds",
    "connector_launchdarkly_ratelimit_wait_seconds",
    "connector_sync_items_total",
    "connector_sync_queue_depth",
    "connector_sync_oldest_pending_age_seconds",
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Bearer ", "Basic c2NyYXBlOnRva2Vu", "scrape-token"],
    ids=["none", "wrong", "empty", "basic", "no-scheme"],
)
def test_metrics__without_the_token__401(client, metrics_token, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"connector_" not in response.content


@pytest.mark.django_db
def test_metrics__a_longer_token_with_the_right_prefix__401(client, metrics_token):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}x"})
    assert response.status_code == 401


@pytest.mark.django_db
def test_metrics__right_token__200_with_every_metric(client, metrics_token):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    for name in NAMES:
        assert f"# TYPE {name} " in body, name


@pytest.mark.django_db
def test_metrics__no_token_configured__404_even_with_a_bearer(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.django_db
def test_metrics__post__405(client, metrics_token):
    response = client.post("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    assert response.status_code == 405


@pytest.mark.django_db
def test_queue_gauges__two_workspaces__each_counted_under_its_own_slug(client, metrics_token):
    a, b, idle = TenantFactory(), TenantFactory(), TenantFactory()
    make_run(a, items=3, status=ItemStatus.PENDING, prefix="a")
    make_run(a, items=1, status=ItemStatus.IN_FLIGHT, prefix="a2")
    make_run(b, items=2, status=ItemStatus.QUEUED, prefix="b")
    make_run(b, items=5, status=ItemStatus.DONE, prefix="b2")  # finished: not in a queue
    make_run(idle, items=4, status=ItemStatus.FAILED, prefix="c")

    samples = scrape(client)

    assert value(samples, "connector_sync_queue_depth", workspace=a.slug, status="pending") == 3
    assert value(samples, "connector_sync_queue_depth", workspace=a.slug, status="in_flight") == 1
    assert value(samples, "connector_sync_queue_depth", workspace=b.slug, status="queued") == 2
    series = [
        dict(labels)
        for (name, labels), _ in samples.items()
        if name == "connector_sync_queue_depth"
    ]
    assert len(series) == 3 and {s["workspace"] for s in series} == {a.slug, b.slug}
    ages = {
        dict(labels)["workspace"]: amount
        for (name, labels), amount in samples.items()
        if name == "connector_sync_oldest_pending_age_seconds"
    }
    assert set(ages) == {a.slug, b.slug}
    assert all(age >= 0 for age in ages.values())
