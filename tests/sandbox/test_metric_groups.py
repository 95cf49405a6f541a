"""Metric groups (LaunchDarkly's beta API) as the sandbox models them, through real HTTP
and through LaunchDarkly's own Python client. Every /api/v2 answer is validated against
the OpenAPI document as it is sent (the `sandbox` fixture's observer)."""

from __future__ import annotations

import launchdarkly_api
import pytest
import requests
from launchdarkly_api.exceptions import ApiException

BETA = {"LD-API-Version": "beta"}
GROUPS = "/projects/default/metric-groups"
BINARY = {"kind": "custom", "isNumeric": False, "unitAggregationType": "average"}
COUNT = {"kind": "custom", "isNumeric": False, "unitAggregationType": "sum"}
NUMERIC = {
    "kind": "custom",
    "isNumeric": True,
    "unit": "USD",
    "successCriteria": "HigherThanBaseline",
}
PAGEVIEW = {"kind": "pageview", "urls": [{"kind": "substring", "substring": "/cart"}]}


class Api:
    """A writer's session on /api/v2, sending `LD-API-Version: beta` unless told not to."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base = f"{base_url}/api/v2"
        self.session = requests.Session()
        self.session.headers["Authorization"] = token

    def __call__(self, method: str, path: str, *, beta: bool = True, **kwargs):
        headers = {**(BETA if beta else {}), **kwargs.pop("headers", {})}
        return self.session.request(method, self.base + path, headers=headers, timeout=5, **kwargs)

    def metric(self, key: str, **fields) -> dict:
        body = {"key": key, "name": key.title(), "eventKey": key, **BINARY, **fields}
        answer = self("POST", "/metrics/default", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def group(self, key: str = "checkout", **fields) -> requests.Response:
        return self("POST", GROUPS, json={**group_body(self.member_id, key), **fields})

    @property
    def member_id(self) -> str:
        return self("GET", "/members/me").json()["_id"]


def group_body(maintainer: str, key: str = "checkout", kind: str = "standard", metrics=None):
    named = kind == "funnel"
    return {
        "key": key,
        "name": f"{key.title()} group",
        "kind": kind,
        "maintainerId": maintainer,
        "tags": ["connector"],
        "metrics": metrics
        or [
            {"key": "viewed", "nameInGroup": "Viewed" if named else ""},
            {"key": "bought", "nameInGroup": "Bought" if named else ""},
        ],
    }


@pytest.fixture
def api(sandbox, writer_token) -> Api:
    return Api(sandbox.base_url, writer_token)


@pytest.fixture
def metrics(api) -> None:
    """Two conversion metrics, `viewed` and `bought`, on the default unit `user`."""
    api.metric("viewed")
    api.metric("bought")


def test_metric_groups__without_beta_header__403_on_every_route(sandbox, api, metrics):
    """Contract GRP-1: each metric-group route answers 403 without `LD-API-Version: beta`,
    also with a dated version; a missing token is still 401 and a reader still 403."""
    assert api.group().status_code == 201
    calls = [
        ("GET", GROUPS, {}),
        ("POST", GROUPS, {"json": group_body(api.member_id, "other")}),
        ("GET", f"{GROUPS}/checkout", {}),
        (
            "PATCH",
            f"{GROUPS}/checkout",
            {"json": [{"op": "replace", "path": "/name", "value": "X"}]},
        ),
        ("DELETE", f"{GROUPS}/checkout", {}),
    ]
    for method, path, kwargs in calls:
        for headers in ({}, {"LD-API-Version": "20240415"}):
            answer = api(method, path, beta=False, headers=headers, **kwargs)
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json()["code"] == "forbidden"
            assert "LD-API-Version: beta" in answer.json()["message"]
    assert requests.get(f"{api.base}{GROUPS}", headers=BETA, timeout=5).status_code == 401
    reader = Api(sandbox.base_url, sandbox.mint_token("reader"))
    assert reader("GET", GROUPS).status_code == 200
    assert reader("DELETE", f"{GROUPS}/checkout").status_code == 403
    kept = api("GET", f"{GROUPS}/checkout").json()
    assert (kept["name"], kept["_version"]) == ("Checkout group", 1)


def test_metric_group_create__standard__201_with_the_group_as_stored(api, metrics):
    """Contract GRP-2, GRP-3: a standard group is created as given, in the order given;
    its maintainer is {key, kind, _member}; its metrics read the metrics themselves."""
    me = api.member_id
    body = {**group_body(me), "description": "Cart to purchase", "colour": "red"}
    body["metrics"].reverse()

    created = api("POST", GROUPS, json=body)

    assert created.status_code == 201, created.text
    group = created.json()
    assert (group["key"], group["name"], group["kind"]) == (
        "checkout",
        "Checkout group",
        "standard",
    )
    assert group["_version"] == 1 and group["tags"] == ["connector"] and "colour" not in group
    assert group["description"] == "Cart to purchase"
    assert group["maintainer"]["key"] == me and group["maintainer"]["kind"] == "member"
    assert group["maintainer"]["_member"]["_id"] == me
    assert group["_links"]["self"]["href"] == "/api/v2/projects/default/metric-groups/checkout"
    assert [m["key"] for m in group["metrics"]] == ["bought", "viewed"]
    bought = group["metrics"][0]
    assert (bought["name"], bought["kind"], bought["isNumeric"]) == ("Bought", "custom", False)
    assert bought["randomizationUnits"] == ["user"] and "nameInGroup" not in bought
    assert bought["_links"]["self"]["href"] == "/api/v2/metrics/default/bought"
    assert group["activeExperimentCount"] == 0 and "experimentCount" not in group
    assert api("GET", f"{GROUPS}/checkout").json() == group
    expanded = api("GET", f"{GROUPS}/checkout", params={"expand": "experimentCount"}).json()
    assert expanded["experimentCount"] == 0


def test_metric_group_create__funnel_of_conversions_and_pageviews__201(api, metrics):
    """Contract GRP-7, GRP-3: a funnel names each step and keeps their order; conversion
    binary and count, and page viewed metrics are its steps."""
    api.metric("added", **COUNT)
    api.metric("cart", **PAGEVIEW)
    steps = [
        {"key": "cart", "nameInGroup": "Saw the cart"},
        {"key": "added", "nameInGroup": "Added"},
        {"key": "bought", "nameInGroup": "Bought"},
    ]

    created = api("POST", GROUPS, json=group_body(api.member_id, "funnel", "funnel", steps))

    assert created.status_code == 201, created.text
    assert [(m["key"], m["nameInGroup"]) for m in created.json()["metrics"]] == [
        ("cart", "Saw the cart"),
        ("added", "Added"),
        ("bought", "Bought"),
    ]


def _without(body: dict, name: str) -> dict:
    return {key: value for key, value in body.items() if key != name}


INVALID = [
    # Contract GRP-2: MetricGroupPost's schema.
    (lambda me: _without(group_body(me), "name"), "'name' is a required property"),
    (lambda me: _without(group_body(me), "tags"), "'tags' is a required property"),
    (lambda me: {**group_body(me), "kind": "ordered"}, "kind"),
    (
        lambda me: {**group_body(me), "metrics": [{"key": "viewed"}, {"key": "bought"}]},
        "nameInGroup",
    ),
    # Contract GRP-4: two metrics at least.
    (
        lambda me: {**group_body(me), "metrics": [{"key": "viewed", "nameInGroup": ""}]},
        "at least two",
    ),
    # Contract GRP-5: each metric exists, once, not archived.
    (
        lambda me: group_body(
            me, metrics=[{"key": "viewed", "nameInGroup": ""}, {"key": "ghost", "nameInGroup": ""}]
        ),
        "metric ghost does not exist in project default",
    ),
    (
        lambda me: group_body(me, metrics=[{"key": "viewed", "nameInGroup": ""}] * 2),
        "viewed is listed more than once",
    ),
    (
        lambda me: group_body(
            me, metrics=[{"key": "viewed", "nameInGroup": ""}, {"key": "old", "nameInGroup": ""}]
        ),
        "metric old is archived",
    ),
    # Contract GRP-6: one shared randomization unit.
    (
        lambda me: group_body(
            me, metrics=[{"key": "viewed", "nameInGroup": ""}, {"key": "org", "nameInGroup": ""}]
        ),
        "share none (viewed: user; org: organization)",
    ),
    # Contract GRP-7: funnels name their steps and take no numeric metric; standard groups
    # leave names empty.
    (
        lambda me: group_body(
            me,
            kind="funnel",
            metrics=[{"key": "viewed", "nameInGroup": "V"}, {"key": "bought", "nameInGroup": " "}],
        ),
        "metrics[1].nameInGroup: required in a funnel",
    ),
    (
        lambda me: group_body(
            me,
            kind="funnel",
            metrics=[{"key": "viewed", "nameInGroup": "V"}, {"key": "revenue", "nameInGroup": "R"}],
        ),
        "revenue is a custom numeric metric",
    ),
    (
        lambda me: group_body(
            me,
            metrics=[
                {"key": "viewed", "nameInGroup": "Step 1"},
                {"key": "bought", "nameInGroup": ""},
            ],
        ),
        "only a funnel's metrics are named",
    ),
    # Contract GRP-8: a maintainer who is a member of the account.
    (lambda me: {**group_body(me), "maintainerId": ""}, "maintainer ID is required"),
    (lambda me: {**group_body(me), "maintainerId": "0" * 24}, "is not a member of this account"),
]


@pytest.mark.parametrize(("body", "message"), INVALID)
def test_metric_group_create__rules_broken__400_naming_the_problem_and_nothing_made(
    api, metrics, body, message
):
    """Contract GRP-2, GRP-4, GRP-5, GRP-6, GRP-7, GRP-8: each broken rule is 400
    invalid_request saying which, and no group is created."""
    api.metric("revenue", **NUMERIC)
    api.metric("old")
    api(
        "PATCH",
        "/metrics/default/old",
        json=[{"op": "replace", "path": "/archived", "value": True}],
    )
    settings = {
        "randomizationUnits": [
            {"randomizationUnit": "user", "default": True},
            {"randomizationUnit": "organization"},
        ]
    }
    assert api("PUT", "/projects/default/experimentation-settings", json=settings).ok
    api.metric("org", randomizationUnits=["organization"])

    answer = api("POST", GROUPS, json=body(api.member_id))

    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "invalid_request"
    assert message in answer.json()["message"]
    assert api("GET", GROUPS).json()["totalCount"] == 0


def test_metric_group_create__duplicate_key__409_and_missing_key_made_from_name(api, metrics):
    """Contract GRP-2: a key already used is 409 conflict; without a key, the name gives one."""
    assert api.group().status_code == 201
    again = api.group(name="Another name")
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert "checkout already exists" in again.json()["message"]

    keyless = {k: v for k, v in group_body(api.member_id).items() if k != "key"}
    keyless["name"] = "Cart to Purchase!"
    created = api("POST", GROUPS, json=keyless)
    assert created.status_code == 201 and created.json()["key"] == "cart-to-purchase"


def test_metric_group_list__pages_filters_and_sorts(sandbox, api, metrics):
    """Contract GRP-9: pages of at most 50 with LaunchDarkly's links, filters joined by
    `and`, sorts by name, creation or connections."""
    me = api.member_id
    for index in range(53):
        kind = "funnel" if index % 2 else "standard"
        assert api("POST", GROUPS, json=group_body(me, f"g{index:02}", kind)).status_code == 201

    first = api("GET", GROUPS, params={"limit": 500}).json()
    assert len(first["items"]) == 50 and first["totalCount"] == 53
    assert [g["key"] for g in first["items"][:2]] == ["g00", "g01"]
    assert first["_links"]["next"]["href"].endswith("limit=50&offset=50")
    assert "prev" not in first["_links"] and first["_links"]["parent"]["href"].endswith("/default")
    rest = api("GET", GROUPS, params={"limit": 500, "offset": 50}).json()
    assert [g["key"] for g in rest["items"]] == ["g50", "g51", "g52"] and "next" not in rest[
        "_links"
    ]
    assert len(api("GET", GROUPS).json()["items"]) == 20

    def keys(**params) -> list[str]:
        answer = api("GET", GROUPS, params={"limit": 50, **params})
        assert answer.status_code == 200, answer.text
        return [g["key"] for g in answer.json()["items"]]

    funnels = keys(filter="kind equals 'funnel'")
    assert len(funnels) == 26 and all(int(key[1:]) % 2 for key in funnels)
    assert keys(filter="kind equals 'funnel' and query equals 'G0'") == [
        "g01", "g03", "g05", "g07", "g09",
    ]  # fmt: skip
    assert keys(filter="query equals 'g52'") == ["g52"]
    assert keys(filter=f"maintainerIds anyOf ['{me}']", limit=1) == ["g00"]
    assert keys(filter="maintainerTeamKey equals 'ops'") == []
    sandbox.set_metric_group_usage("g07", experiments=3)
    sandbox.set_metric_group_usage("g03", experiments=1)
    assert keys(filter="hasConnections equals true") == ["g03", "g07"]
    assert keys(sort="-connectionCount", limit=2) == ["g07", "g03"]
    assert keys(sort="-name", limit=1) == ["g52"]
    assert keys(sort="-createdAt,name", limit=1)[0] in {f"g{i:02}" for i in range(53)}
    for bad in (
        "colour equals 'red'",
        "kind anyOf ['funnel']",
        "experimentStatus equals 'running'",
    ):
        assert api("GET", GROUPS, params={"filter": bad}).status_code == 400, bad
    assert api("GET", GROUPS, params={"sort": "size"}).status_code == 400


def test_metric_group_patch__fields_replaced_version_bumped_rules_rechecked(api, metrics):
    """Contract GRP-10: JSON Patch on name, description, tags, maintainer and metrics;
    `_version` + 1; a stale `test` is 409; key and kind stay; a result that breaks a
    rule is 400 and changes nothing."""
    api.metric("added", **COUNT)
    assert api.group().status_code == 201
    patch = [
        {"op": "test", "path": "/_version", "value": 1},
        {"op": "replace", "path": "/name", "value": "Checkout (v2)"},
        {"op": "add", "path": "/description", "value": "Now with the cart"},
        {"op": "add", "path": "/tags/-", "value": "funnel"},
        {"op": "replace", "path": "/kind", "value": "standard"},
        {
            "op": "replace",
            "path": "/metrics",
            "value": [
                {"key": "added", "nameInGroup": ""},
                {"key": "viewed", "nameInGroup": ""},
                {"key": "bought", "nameInGroup": ""},
            ],
        },
    ]

    patched = api("PATCH", f"{GROUPS}/checkout", json={"comment": "add the cart", "patch": patch})

    assert patched.status_code == 200, patched.text
    group = patched.json()
    assert (group["name"], group["description"], group["_version"]) == (
        "Checkout (v2)",
        "Now with the cart",
        2,
    )
    assert group["tags"] == ["connector", "funnel"]
    assert [m["key"] for m in group["metrics"]] == ["added", "viewed", "bought"]
    assert group["_lastModified"] >= group["_creationDate"]
    stale = api("PATCH", f"{GROUPS}/checkout", json=patch[:2])
    assert stale.status_code == 409 and stale.json()["code"] == "optimistic_locking_error"
    for path, value in (("/kind", "funnel"), ("/key", "other"), ("/_id", "x"), ("/_version", 9)):
        refused = api(
            "PATCH", f"{GROUPS}/checkout", json=[{"op": "replace", "path": path, "value": value}]
        )
        assert refused.status_code == 400, path
    one = [{"op": "replace", "path": "/metrics", "value": [{"key": "viewed", "nameInGroup": ""}]}]
    short = api("PATCH", f"{GROUPS}/checkout", json=one)
    assert short.status_code == 400 and "at least two" in short.json()["message"]
    unnamed = api("PATCH", f"{GROUPS}/checkout", json=[{"op": "remove", "path": "/maintainerId"}])
    assert unnamed.status_code == 400
    assert api("PATCH", f"{GROUPS}/missing", json=[]).status_code == 404
    assert api("GET", f"{GROUPS}/checkout").json()["_version"] == 2


def test_metric_group_delete__refused_while_connected_then_204(sandbox, api, metrics):
    """Contract GRP-11: a group used by an experiment or an active guarded rollout cannot
    be deleted (400); once free it is deleted (204) and then unknown (404)."""
    assert api.group().status_code == 201
    answer = sandbox.set_metric_group_usage("checkout", experiments=2, active_experiments=1)
    assert answer == {
        "project_key": "default",
        "key": "checkout",
        "experiments": 2,
        "active_experiments": 1,
        "active_guarded_rollouts": 0,
    }
    assert api("GET", f"{GROUPS}/checkout").json()["activeExperimentCount"] == 1

    refused = api("DELETE", f"{GROUPS}/checkout")
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_request"
    assert "used by 2 experiments" in refused.json()["message"]
    sandbox.set_metric_group_usage("checkout", experiments=0, active_guarded_rollouts=1)
    assert "1 active guarded rollout" in api("DELETE", f"{GROUPS}/checkout").json()["message"]
    sandbox.set_metric_group_usage("checkout", experiments=0, active_guarded_rollouts=0)

    assert api("DELETE", f"{GROUPS}/checkout").status_code == 204
    assert api("GET", f"{GROUPS}/checkout").status_code == 404
    assert api("DELETE", f"{GROUPS}/checkout").status_code == 404
    with pytest.raises(requests.HTTPError):
        sandbox.set_metric_group_usage("checkout")


def test_metric_in_group__counted_and_kept_from_archive_and_delete(sandbox, api, metrics):
    """Contract GRP-12: a grouped metric counts the group (metricGroupCount, metricGroups)
    besides what /_sandbox/metric-usage says; it cannot be archived, and an archived metric
    in a group cannot be deleted."""
    assert api.group().status_code == 201
    expand = {"expand": "metricGroupCount,metricGroups"}
    viewed = api("GET", "/metrics/default/viewed", params=expand).json()
    assert viewed["metricGroupCount"] == 1
    assert [(g["key"], g["kind"]) for g in viewed["metricGroups"]] == [("checkout", "standard")]
    sandbox.set_metric_usage("default", "viewed", metric_groups=2)
    assert api("GET", "/metrics/default/viewed", params=expand).json()["metricGroupCount"] == 3
    archive = [{"op": "replace", "path": "/archived", "value": True}]
    refused = api("PATCH", "/metrics/default/bought", json=archive)
    assert refused.status_code == 400 and "1 metric group" in refused.json()["message"]
    listed = api("GET", "/metrics/default", params={"filter": "hasConnections:true"}).json()
    assert {m["key"] for m in listed["items"]} == {"viewed", "bought"}

    api.metric("spare")
    assert api("PATCH", "/metrics/default/spare", json=archive).status_code == 200
    sandbox.set_metric_usage("default", "spare", metric_groups=1)
    kept = api("DELETE", "/metrics/default/spare")
    assert kept.status_code == 400 and "metric group" in kept.json()["message"]
    sandbox.set_metric_usage("default", "spare", metric_groups=0)
    assert api("DELETE", "/metrics/default/spare").status_code == 204

    assert api("DELETE", f"{GROUPS}/checkout").status_code == 204
    assert api("GET", "/metrics/default/bought", params=expand).json()["metricGroupCount"] == 0
    assert api("PATCH", "/metrics/default/bought", json=archive).status_code == 200


def test_metric_groups__control_state_and_reset(sandbox, api, metrics):
    """Contract GRP-11: the stored groups and their usage through RunningSandbox, per
    account; reset forgets them."""
    other = sandbox.create_account("Other")
    assert api.group().status_code == 201
    sandbox.set_metric_group_usage("checkout", experiments=1)

    [stored] = sandbox.metric_groups()
    assert stored["key"] == "checkout" and stored["_version"] == 1
    assert stored["metrics"] == [
        {"key": "viewed", "nameInGroup": ""},
        {"key": "bought", "nameInGroup": ""},
    ]
    assert stored["usage"] == {
        "experiments": 1,
        "active_experiments": 0,
        "active_guarded_rollouts": 0,
    }
    assert sandbox.metric_groups(account_id=other["id"]) == []
    assert sandbox.metric_groups("mobile-app") == []
    overview = requests.get(f"{sandbox.base_url}/_sandbox/", timeout=5).text
    assert "Checkout group" in overview

    sandbox.reset()
    assert sandbox.metric_groups() == []


def test_metric_groups__official_client__create_get_list_patch_delete(
    sandbox, writer_token, metrics
):
    """Contract GRP-1, GRP-2, GRP-3, GRP-10, GRP-11: LaunchDarkly's Python client
    (MetricsBetaApi) deserialises every answer; without the beta header it raises 403."""
    config = launchdarkly_api.Configuration(host=sandbox.base_url)
    config.api_key["ApiKey"] = writer_token
    with launchdarkly_api.ApiClient(config) as client:
        groups = launchdarkly_api.MetricsBetaApi(client)
        me = launchdarkly_api.AccountMembersApi(client).get_member("me").id
        post = launchdarkly_api.MetricGroupPost(
            key="checkout",
            name="Checkout",
            kind="funnel",
            maintainer_id=me,
            tags=["connector"],
            metrics=[
                launchdarkly_api.MetricInMetricGroupInput(key="viewed", name_in_group="Viewed"),
                launchdarkly_api.MetricInMetricGroupInput(key="bought", name_in_group="Bought"),
            ],
        )
        with pytest.raises(ApiException) as no_beta:
            groups.create_metric_group("default", post)
        assert no_beta.value.status == 403

        client.set_default_header("LD-API-Version", "beta")
        created = groups.create_metric_group("default", post)
        assert created.version == 1 and created.maintainer.key == me
        assert created.maintainer.member.id == me
        assert [(m.key, m.name_in_group) for m in created.metrics] == [
            ("viewed", "Viewed"),
            ("bought", "Bought"),
        ]
        fetched = groups.get_metric_group("default", "checkout", expand="experimentCount")
        assert fetched.kind == "funnel" and fetched.experiment_count == 0
        listed = groups.get_metric_groups("default", filter="kind equals 'funnel'", limit=10)
        assert listed.total_count == 1 and listed.items[0].key == "checkout"
        rename = [launchdarkly_api.PatchOperation(op="replace", path="/name", value="Checkout 2")]
        patched = groups.patch_metric_group("default", "checkout", rename)
        assert patched.name == "Checkout 2" and patched.version == 2
        groups.delete_metric_group("default", "checkout")
        with pytest.raises(ApiException) as missing:
            groups.get_metric_group("default", "checkout")
        assert missing.value.status == 404


def test_metric_groups__every_operation_and_status__valid_against_spec(
    sandbox, api, metrics, spec_collector
):
    """Contract GRP-1, GRP-2, GRP-9, GRP-10, GRP-11: each operation's success and error
    answers are checked against the OpenAPI document by the fixture's observer."""
    before = spec_collector.validated.copy()
    rename = [{"op": "replace", "path": "/name", "value": "Renamed"}]
    calls = [
        ("POST", GROUPS, {"json": group_body(api.member_id)}),
        ("POST", GROUPS, {"json": group_body(api.member_id)}),
        ("POST", GROUPS, {"json": {"name": "x"}}),
        ("POST", "/projects/nope/metric-groups", {"json": group_body(api.member_id)}),
        ("GET", GROUPS, {"params": {"limit": 1}}),
        ("GET", GROUPS, {"params": {"filter": "colour equals 'red'"}}),
        ("GET", "/projects/nope/metric-groups", {}),
        ("GET", f"{GROUPS}/checkout", {"params": {"expand": "experimentCount"}}),
        ("GET", f"{GROUPS}/missing", {}),
        ("PATCH", f"{GROUPS}/checkout", {"json": rename}),
        (
            "PATCH",
            f"{GROUPS}/checkout",
            {"json": [{"op": "test", "path": "/_version", "value": 1}]},
        ),
        ("PATCH", f"{GROUPS}/checkout", {"json": {"op": "replace"}}),
        ("PATCH", f"{GROUPS}/missing", {"json": rename}),
        ("DELETE", f"{GROUPS}/missing", {}),
        ("DELETE", f"{GROUPS}/checkout", {}),
    ]
    statuses = [api(method, path, **kwargs).status_code for method, path, kwargs in calls]
    statuses.append(api("GET", GROUPS, beta=False).status_code)

    assert statuses == [
        201,
        409,
        400,
        404,
        200,
        400,
        404,
        200,
        404,
        200,
        409,
        400,
        404,
        404,
        204,
        403,
    ]
    validated = spec_collector.validated - before
    assert {key.split()[0] for key in validated if "MetricGroup" in key} == {
        "getMetricGroups",
        "createMetricGroup",
        "getMetricGroup",
        "patchMetricGroup",
        "deleteMetricGroup",
    }
    assert sum(v for key, v in validated.items() if "MetricGroup" in key) == len(statuses)
