"""LaunchDarklyClient's metric-group operations (LaunchDarkly's beta API) over real HTTP
against the sandbox."""

from __future__ import annotations

import pytest
import requests

from connector.launchdarkly.client import BETA_API_VERSION, LaunchDarklyClient
from connector.launchdarkly.errors import Conflict, InvalidRequest, NotFound
from connector.launchdarkly.routes import route_template

FUNNEL_STEPS = ("visited", "signed-up", "paid")


def conversion(key: str) -> dict:
    return {
        "key": key,
        "name": key.replace("-", " ").capitalize(),
        "kind": "custom",
        "eventKey": key,
        "isNumeric": False,
        "unitAggregationType": "average",
        "randomizationUnits": ["user"],
    }


@pytest.fixture
def maintainer(client: LaunchDarklyClient) -> str:
    return client.get_caller_identity()["memberId"]


@pytest.fixture
def steps(client: LaunchDarklyClient) -> tuple[str, ...]:
    for key in FUNNEL_STEPS:
        client.create_metric("default", conversion(key))
    return FUNNEL_STEPS


def funnel(key: str, steps, maintainer: str, **fields) -> dict:
    return {
        "key": key,
        "name": f"Funnel {key}",
        "kind": "funnel",
        "description": "",
        "maintainerId": maintainer,
        "tags": ["metric-sync"],
        "metrics": [{"key": step, "nameInGroup": f"Step {i}"} for i, step in enumerate(steps)],
        **fields,
    }


def beta_requests(sandbox, since: int = 0) -> list[dict]:
    return [r for r in sandbox.requests_since(since) if "/metric-groups" in r["path"]]


def test_client__metric_group_lifecycle__create_get_patch_delete_all_beta(
    sandbox, client, steps, maintainer
):
    """Contract GRP-1, GRP-2, GRP-3, GRP-10, GRP-11: every call sends `LD-API-Version:
    beta`; create answers the MetricGroupRep with the metrics in order and the
    maintainer as {key, kind, _member}; a patch bumps `_version`; a delete is gone."""
    created = client.create_metric_group("default", funnel("signup", steps, maintainer))
    assert created["key"] == "signup" and created["_version"] == 1
    assert [m["key"] for m in created["metrics"]] == list(steps)
    assert created["maintainer"]["key"] == maintainer

    read = client.get_metric_group("default", "signup", expand="experimentCount")
    assert read["experimentCount"] == 0 and read["activeExperimentCount"] == 0

    patched = client.patch_metric_group(
        "default", "signup", [{"op": "replace", "path": "/name", "value": "Renamed"}]
    )
    assert patched["name"] == "Renamed" and patched["_version"] == 2

    client.delete_metric_group("default", "signup")
    with pytest.raises(NotFound):
        client.get_metric_group("default", "signup")

    sent = beta_requests(sandbox)
    assert [r["method"] for r in sent] == ["POST", "GET", "PATCH", "DELETE", "GET"]
    assert {r["ld_api_version"] for r in sent} == {BETA_API_VERSION}
    # The other routes keep the dated version: beta is for beta resources only.
    others = [r for r in sandbox.requests_since(0) if "/metric-groups" not in r["path"]]
    assert others and BETA_API_VERSION not in {r["ld_api_version"] for r in others}


def test_client__list_metric_groups__follows_every_page_with_the_beta_header(
    sandbox, client, steps, maintainer
):
    """Contract GRP-9, GRP-1: getMetricGroups pages with limit and offset through
    `_links.next`; the next pages need the beta header too."""
    for i in range(5):
        client.create_metric_group("default", funnel(f"funnel-{i}", steps, maintainer))
    since = sandbox.requests_since(0)[-1]["seq"]

    listed = list(client.list_metric_groups("default", limit=2))

    assert [g["key"] for g in listed] == [f"funnel-{i}" for i in range(5)]
    pages = beta_requests(sandbox, since)
    assert len(pages) == 3 and all(r["status"] == 200 for r in pages)
    assert "offset=4" in pages[-1]["path"]
    page, next_href = client.list_metric_groups_page("default", limit=3)
    assert len(page) == 3 and next_href is not None
    rest, last = client.list_metric_groups_page("default", next_href=next_href)
    assert len(rest) == 2 and last is None
    with pytest.raises(ValueError):
        client.list_metric_groups("default", limit=51)


def test_client__metric_group_refusals__typed_errors(sandbox, client, steps, maintainer):
    """Contract GRP-2, GRP-4, GRP-11: a duplicate key is a Conflict, a group of one
    metric is refused, a group connected to an experiment cannot be deleted."""
    client.create_metric_group("default", funnel("signup", steps, maintainer))

    with pytest.raises(Conflict):
        client.create_metric_group("default", funnel("signup", steps, maintainer))
    with pytest.raises(InvalidRequest, match="at least two"):
        client.create_metric_group("default", funnel("alone", steps[:1], maintainer))
    sandbox.set_metric_group_usage("signup", experiments=1)
    with pytest.raises(InvalidRequest, match="experiment"):
        client.delete_metric_group("default", "signup")
    assert client.get_metric_group("default", "signup")["key"] == "signup"
    with pytest.raises(NotFound):
        client.delete_metric_group("default", "never-made")


def test_metric_group_route__without_the_beta_header__forbidden(sandbox, writer_token):
    """Contract GRP-1: why the client sends the header: without it LaunchDarkly
    answers 403."""
    answer = requests.get(
        f"{sandbox.base_url}/api/v2/projects/default/metric-groups",
        headers={"Authorization": writer_token, "LD-API-Version": "20240415"},
        timeout=5,
    )
    assert answer.status_code == 403 and "beta" in answer.json()["message"]


def test_route_template__metric_group_paths__one_series_per_route():
    assert (
        route_template("/api/v2/projects/default/metric-groups?limit=50&offset=50")
        == "/api/v2/projects/{projectKey}/metric-groups"
    )
    assert (
        route_template("/api/v2/projects/default/metric-groups/signup-funnel")
        == "/api/v2/projects/{projectKey}/metric-groups/{metricGroupKey}"
    )
