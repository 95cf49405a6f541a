"""Metric filters (`filters` on postMetric / patchMetric) and the imported events they
let through, as the sandbox models them (contract rows FLT-1 to FLT-8; the rules and
their sources are in `sandbox/filters.py`), through real HTTP."""

from __future__ import annotations

import launchdarkly_api
import pytest
import requests

from tests.sandbox.test_event_import import send

METRIC = {"kind": "custom", "isNumeric": False, "eventKey": "signup"}


def leaf(attribute="plan", op="in", values=("pro",), negate=False, **extra) -> dict:
    return {
        "type": "eventProperty",
        "attribute": attribute,
        "op": op,
        "values": list(values),
        "negate": negate,
        **extra,
    }


def group(*members, op="and", **extra) -> dict:
    return {"type": "group", "op": op, "values": list(members), "negate": False, **extra}


def user_key(*keys) -> dict:
    return {
        "type": "contextAttribute",
        "contextKind": "user",
        "attribute": "key",
        "op": "in",
        "values": list(keys),
        "negate": False,
    }


@pytest.fixture
def metrics_api(sandbox, writer_token):
    session = requests.Session()
    session.headers["Authorization"] = writer_token
    base = f"{sandbox.base_url}/api/v2/metrics/default"

    def call(method: str, path: str = "", **kwargs) -> requests.Response:
        return session.request(method, base + path, timeout=5, **kwargs)

    return call


VALID = [
    leaf(),
    leaf(values=["pro", 3, True, 2.5], negate=True),
    leaf(op="contains", values=["@example.com"]),
    leaf(op="startsWith", values=["J", "K"]),
    leaf(op="endsWith", values=[".pdf"], negate=True),
    leaf("amount", "greaterThan", [100]),
    leaf("amount", "lessThanOrEqual", [0.12345678901234]),
    group(leaf(), leaf("amount", "greaterThanOrEqual", [10])),
    group(group(leaf(), user_key("u1")), leaf("country", "in", ["JP"]), op="or"),
    user_key("u1", "u2"),
    {**user_key("u1"), "contextKind": "organization"},
    group(*(leaf(f"p{index}") for index in range(10))),
    leaf(values=["x" * 1024]),
]


@pytest.mark.parametrize("filters", VALID)
def test_metric_filters__accepted__stored_and_answered_as_given(metrics_api, filters):
    """Contract FLT-1, FLT-2, FLT-3, FLT-4, FLT-5, FLT-6: LaunchDarkly's filter shapes
    within its limits are accepted and answered back unchanged."""
    created = metrics_api("POST", json={"key": "m", **METRIC, "filters": filters})

    assert created.status_code == 201, created.text
    assert created.json()["filters"] == filters
    assert metrics_api("GET", "/m").json()["filters"] == filters


INVALID = [
    # Contract FLT-2: node shape.
    ({k: v for k, v in leaf().items() if k != "negate"}, "'negate' is a required property"),
    (group({k: v for k, v in leaf().items() if k != "op"}), "filters.values[0]: op required"),
    ({**leaf(), "type": "user"}, "filters.type: must be one of"),
    (group(leaf(), "plan = pro"), "filters.values[1]: must be a filter object"),
    (group({**leaf(), "negate": "no"}), "filters.values[0].negate: must be true or false"),
    ({k: v for k, v in leaf().items() if k != "attribute"}, "filters.attribute: required"),
    (leaf(contextKind="user"), "only contextAttribute conditions name one"),
    # Contract FLT-3: group nodes.
    (group(leaf(), op="xor"), "a group combines its members with and or or"),
    (group(leaf(), attribute="plan"), "filters.attribute: a group node must not set it"),
    ({**group(leaf()), "negate": True}, "a group node cannot be negated"),
    (group(), "a group needs at least one member node"),
    (group(group(group(leaf()))), "filters.values[0].values[0].values[0]: filters nest at most 3"),
    # Contract FLT-4: limits.
    (
        group(*(leaf(f"p{index}") for index in range(11))),
        "at most 10 conditions (leaves); this has 11",
    ),
    (leaf(values=["x" * 1025]), "1025 characters; at most 1024"),
    (leaf("amount", "greaterThan", [0.123456789012345]), "at most 14 decimal places"),
    # Contract FLT-5: set operators.
    (leaf(values=[]), "in takes at least one value"),
    (leaf(op="contains", values=[{"a": 1}]), "must be a string, a number or a boolean"),
    (leaf(values=[None]), "must be a string, a number or a boolean"),
    # Contract FLT-6: numeric comparisons.
    (leaf("amount", "greaterThan", ["100"]), "takes a JSON number, not the string '100'"),
    (leaf("amount", "lessThan", [True]), "takes a JSON number"),
    (leaf("amount", "lessThan", [1, 2]), "lessThan takes exactly one value, not 2"),
    (leaf("amount", "greaterThanOrEqual", [1], negate=True), "cannot be negated"),
    # Contract FLT-7: operators LaunchDarkly refuses on hosted metrics, or we do not model.
    (leaf(op="exists", values=[]), "exists is not available on metrics of LaunchDarkly-hosted"),
    (leaf("at", "before", [1_700_000_000_000]), "before is not modelled by the sandbox"),
    (leaf(op="equals"), "unknown operator 'equals'"),
    (leaf(op="and"), "and combines the members of a group node"),
]


@pytest.mark.parametrize(("filters", "message"), INVALID)
def test_metric_filters__refused__400_naming_the_node_and_not_created(
    metrics_api, filters, message
):
    """Contract FLT-2, FLT-3, FLT-4, FLT-5, FLT-6, FLT-7: a filter LaunchDarkly would
    refuse is 400 invalid_request with a message naming the node and the reason."""
    answer = metrics_api("POST", json={"key": "m", **METRIC, "filters": filters})

    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "invalid_request"
    assert message in answer.json()["message"]
    assert metrics_api("GET").json()["totalCount"] == 0


def test_metric_filters__on_a_pageview_metric__400(metrics_api):
    """Contract FLT-1: filters are for custom metrics only."""
    pageview = {
        "key": "cart",
        "kind": "pageview",
        "urls": [{"kind": "substring", "substring": "/cart"}],
        "filters": leaf(),
    }
    answer = metrics_api("POST", json=pageview)
    assert answer.status_code == 400
    assert "filters: only supported for custom metrics" in answer.json()["message"]


def test_metric_filters__patch__checked_again_and_removable(metrics_api):
    """Contract FLT-1: a patch that breaks the filter is refused and changes nothing; a
    good one replaces it; removing it leaves the metric unfiltered."""
    assert metrics_api("POST", json={"key": "m", **METRIC, "filters": leaf()}).ok
    broken = [{"op": "replace", "path": "/filters/values", "value": []}]

    refused = metrics_api("PATCH", "/m", json=broken)

    assert refused.status_code == 400 and "at least one value" in refused.json()["message"]
    kept = metrics_api("GET", "/m").json()
    assert kept["filters"] == leaf() and kept["_version"] == 1
    wider = group(leaf(), leaf("amount", "greaterThan", [5]), op="or")
    replaced = metrics_api(
        "PATCH", "/m", json=[{"op": "replace", "path": "/filters", "value": wider}]
    )
    assert replaced.status_code == 200 and replaced.json()["filters"] == wider
    removed = metrics_api("PATCH", "/m", json=[{"op": "remove", "path": "/filters"}])
    assert removed.status_code == 200 and "filters" not in removed.json()


def test_metric_filters__official_client__round_trip(sandbox, writer_token):
    """Contract FLT-1: LaunchDarkly's Python client sends an EventFilter tree and reads
    the metric's `filters` back."""
    config = launchdarkly_api.Configuration(host=sandbox.base_url)
    config.api_key["ApiKey"] = writer_token
    with launchdarkly_api.ApiClient(config) as client:
        metrics = launchdarkly_api.MetricsApi(client)
        created = metrics.post_metric(
            "default",
            launchdarkly_api.MetricPost(
                key="pro-orders",
                kind="custom",
                event_key="order",
                is_numeric=False,
                filters=launchdarkly_api.EventFilter(
                    type="group",
                    op="and",
                    negate=False,
                    values=[leaf(), leaf("amount", "greaterThan", [100])],
                ),
            ),
        )
    assert created.filters.type == "group" and created.filters.op == "and"
    assert created.filters.values[1]["values"] == [100]


EVENT_METRICS = {
    "all-signups": ("signup", None),
    "pro-signups": ("signup", leaf()),
    "not-pro": ("signup", leaf(negate=True)),
    "eu-or-beta": (
        "signup",
        group(leaf("country", values=["DE", "FR"]), leaf("beta", values=[True]), op="or"),
    ),
    "u1-only": ("signup", user_key("u1")),
    "vip": ("signup", leaf("tags", values=["vip"])),
    "gmail": ("signup", leaf("email", "endsWith", ["@gmail.com"])),
    "big-jp-orders": (
        "order",
        group(leaf("amount", "greaterThan", [100]), leaf("country", "startsWith", ["J"])),
    ),
    "five-as-text": ("order", leaf("amount", values=["5"])),
}


def event(key: str, user: str, data: dict | None = None) -> dict:
    body = {
        "kind": "custom",
        "key": key,
        "creationDate": 1_700_000_000_000,
        "contextKeys": {"user": user},
    }
    return body if data is None else {**body, "data": data}


def test_event_import__counted_per_metric_its_filter_matches(sandbox, writer_token, metrics_api):
    """Contract FLT-8: each imported event counts for the metrics with its event key whose
    filter its `data` (or context key) passes; JSON types are kept; an absent property
    matches no leaf, negated or not; all environments count together."""
    for key, (event_key, filters) in EVENT_METRICS.items():
        body = {"key": key, **METRIC, "eventKey": event_key}
        if filters is not None:
            body["filters"] = filters
        assert metrics_api("POST", json=body).status_code == 201, key
    events = [
        event("signup", "u1", {"plan": "pro", "country": "DE", "email": "a@gmail.com"}),
        event("signup", "u2", {"plan": "free", "beta": True, "tags": ["vip", "early"]}),
        event("signup", "u3"),
        event("signup", "u4", {"plan": "pro", "beta": 1, "email": "b@gmail.com.evil"}),
        event("signup", "u5", {"plan": None}),
        event("order", "u1", {"amount": 150, "country": "JP"}),
        event("order", "u2", {"amount": "150", "country": "JP"}),
        event("order", "u3", {"amount": 5}),
        event("order", "u4", {"amount": "5"}),
    ]

    assert send(sandbox, writer_token, events).status_code == 202
    test_env = "/v2/event-data-import/default/test"
    assert send(sandbox, writer_token, [event("signup", "u1", {"plan": "pro"})], path=test_env).ok

    expected = {
        "all-signups": 6,
        "pro-signups": 3,
        "not-pro": 1,
        "eu-or-beta": 2,
        "u1-only": 2,
        "vip": 1,
        "gmail": 1,
        "big-jp-orders": 1,
        "five-as-text": 1,
    }
    assert sandbox.metric_event_counts() == expected
    account_id = sandbox.state()["demo_account_id"]
    by_metric = sandbox.events()["by_metric"]
    assert by_metric[account_id] == {f"default/{key}": n for key, n in expected.items()}
    assert sandbox.events()["counts"][account_id]["default"]["production"] == {
        "signup": 5,
        "order": 4,
    }
    sandbox.reset()
    assert sandbox.events()["by_metric"] == {}
