"""The sandbox answers like LaunchDarkly where the connector depends on it: experimentation
settings, archive and delete rules, races, maintainers, tokens and caller identity.

Every /api/v2 answer is validated against the OpenAPI document as it is sent (the
`sandbox` fixture's observer), so these tests check behaviour; shapes are checked there.
"""

from __future__ import annotations

import pytest
import requests

from tests.sandbox.test_oauth import authorize, exchange, pkce_pair

CONVERSION = {"key": "m", "kind": "custom", "isNumeric": False, "eventKey": "e"}
ARCHIVE = [{"op": "replace", "path": "/archived", "value": True}]
RESTORE = [{"op": "replace", "path": "/archived", "value": False}]


class Api:
    def __init__(self, base_url: str, token: str) -> None:
        self.base = f"{base_url}/api/v2"
        self.session = requests.Session()
        self.session.headers["Authorization"] = token

    def __call__(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=5, **kwargs)

    def settings(self, *units: str | tuple[str, bool]) -> requests.Response:
        body = [
            {"randomizationUnit": u[0], "default": u[1]}
            if isinstance(u, tuple)
            else {"randomizationUnit": u}
            for u in units
        ]
        return self(
            "PUT",
            "/projects/default/experimentation-settings",
            json={"randomizationUnits": body},
        )

    def metric(self, **fields) -> dict:
        answer = self("POST", "/metrics/default", json={**CONVERSION, **fields})
        assert answer.status_code == 201, answer.text
        return answer.json()

    def patch(self, key: str, patch: list[dict]) -> requests.Response:
        return self("PATCH", f"/metrics/default/{key}", json=patch)

    def listed(self, **params) -> list[str]:
        answer = self("GET", "/metrics/default", params=params)
        assert answer.status_code == 200, answer.text
        return sorted(m["key"] for m in answer.json()["items"])


@pytest.fixture
def api(sandbox, writer_token) -> Api:
    return Api(sandbox.base_url, writer_token)


def error(answer: requests.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    return answer.json()["message"]


# --- experimentation settings ------------------------------------------------------------


def test_experimentation_settings__seeded__only_user_registered_as_default(api):
    """Contract EXP-1: projects start with only `user` registered, as the default, although
    the `organization` and `device` context kinds exist."""
    answer = api("GET", "/projects/default/experimentation-settings")

    assert answer.status_code == 200
    body = answer.json()
    assert body["_projectKey"] == "default" and body["_projectId"]
    assert [(u["randomizationUnit"], u["default"]) for u in body["randomizationUnits"]] == [
        ("user", True)
    ]
    kinds = api("GET", "/projects/default/context-kinds").json()["items"]
    assert {"organization", "device"} <= {k["key"] for k in kinds}


def test_experimentation_settings__put__replaces_units_and_keeps_one_default(sandbox, api):
    """Contract EXP-2: PUT replaces the list; with no default the first unit is default."""
    answer = api.settings("organization", "user")

    assert answer.status_code == 200, answer.text
    units = answer.json()["randomizationUnits"]
    assert [(u["randomizationUnit"], u["default"]) for u in units] == [
        ("organization", True),
        ("user", False),
    ]
    assert units[0]["_displayName"] == "Organization" and units[0]["_hidden"] is False
    stored = api("GET", "/projects/default/experimentation-settings").json()
    assert stored["randomizationUnits"] == units
    replaced = api.settings("device", ("user", True)).json()["randomizationUnits"]
    assert [(u["randomizationUnit"], u["default"]) for u in replaced] == [
        ("device", False),
        ("user", True),
    ]
    reader = Api(sandbox.base_url, sandbox.mint_token("reader"))
    error(reader.settings("user"), 403, "forbidden")


@pytest.mark.parametrize(
    ("units", "wanted"),
    [
        ((("tenant", True),), "tenant"),
        ((("user", True), ("organization", True)), "one default"),
        ((), "At least one"),
    ],
)
def test_experimentation_settings__put_invalid__400_and_unchanged(api, units, wanted):
    """Contract EXP-2: units must be context kinds of the project, with at most one default."""
    assert wanted in error(api.settings(*units), 400, "invalid_request")
    missing_field = api(
        "PUT", "/projects/default/experimentation-settings", json={"randomizationUnits": [{}]}
    )
    error(missing_field, 400, "invalid_request")
    current = api("GET", "/projects/default/experimentation-settings").json()
    assert [u["randomizationUnit"] for u in current["randomizationUnits"]] == ["user"]


def test_metric__unregistered_randomization_unit__400_with_launchdarklys_message(api):
    """Contract EXP-3: postMetric and patchMetric refuse a unit the settings do not register."""
    refused = api("POST", "/metrics/default", json={**CONVERSION, "randomizationUnits": ["device"]})
    assert (
        error(refused, 400, "invalid_request")
        == 'Randomization unit "device" not found in project settings'
    )
    api.metric()
    patched = api.patch("m", [{"op": "add", "path": "/randomizationUnits/-", "value": "device"}])
    assert (
        error(patched, 400, "invalid_request")
        == 'Randomization unit "device" not found in project settings'
    )

    assert api.settings(("user", True), "device").status_code == 200
    assert api.metric(key="n", randomizationUnits=["user", "device"])["randomizationUnits"] == [
        "user",
        "device",
    ]


def test_metric__no_randomization_units__gets_the_projects_default_unit(api):
    """Contract EXP-3: a custom metric created without units gets the project's default."""
    assert api.metric(key="before")["randomizationUnits"] == ["user"]
    api.settings("user", ("organization", True))

    assert api.metric(key="after")["randomizationUnits"] == ["organization"]


# --- archive, delete and usage -------------------------------------------------------------


def test_metric_archive__replace_and_add__archives_and_restores(api):
    """Contract MET-ARCHIVE-1: `/archived` true sets archivedAt; false drops it."""
    created = api.metric()
    assert created["archived"] is False and "archivedAt" not in created

    archived = api.patch("m", ARCHIVE)
    assert archived.status_code == 200, archived.text
    assert archived.json()["archived"] is True
    assert isinstance(archived.json()["archivedAt"], int)
    assert api.listed() == ["m"]
    assert api("GET", "/metrics/default").json()["items"][0]["archived"] is True

    restored = api.patch("m", RESTORE).json()
    assert restored["archived"] is False and "archivedAt" not in restored
    again = api.patch("m", [{"op": "add", "path": "/archived", "value": True}]).json()
    assert again["archived"] is True and again["_version"] == 4
    moved = api.patch("m", [{"op": "replace", "path": "/archivedAt", "value": 1}])
    error(moved, 400, "invalid_request")
    not_bool = api.patch("m", [{"op": "replace", "path": "/archived", "value": "yes"}])
    error(not_bool, 400, "invalid_request")


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        ({"active_experiments": 1}, "in use by 1 active experiment"),
        (
            {"active_guarded_rollouts": 2, "metric_groups": 1},
            "in use by 2 active guarded rollouts and 1 metric group",
        ),
    ],
)
def test_metric_archive__in_use__400_but_other_patches_work(sandbox, api, usage, message):
    """Contract MET-ARCHIVE-2: archiving is refused while the metric is in use."""
    api.metric()
    sandbox.set_metric_usage("default", "m", **usage)

    refused = error(api.patch("m", ARCHIVE), 400, "invalid_request")
    assert refused == f"Metric is {message} and cannot be archived"
    renamed = api.patch("m", [{"op": "replace", "path": "/name", "value": "Renamed"}])
    assert renamed.status_code == 200 and renamed.json()["archived"] is False

    sandbox.set_metric_usage(
        "default", "m", active_experiments=0, active_guarded_rollouts=0, metric_groups=0
    )
    assert api.patch("m", ARCHIVE).status_code == 200


def test_metric_delete__unarchived_or_ever_used__400(sandbox, api):
    """Contract MET-DELETE-1: only an archived metric never used in an experiment or
    guarded rollout can be deleted."""
    api.metric()
    assert (
        error(api("DELETE", "/metrics/default/m"), 400, "invalid_request")
        == "Only archived metrics can be deleted; archive the metric first"
    )
    api.patch("m", ARCHIVE)
    used_message = (
        "Metric was used in an experiment or guarded rollout and cannot be deleted; "
        "archive it instead"
    )
    for usage in ({"experiments": 1}, {"experiments": 0, "guarded_rollouts": 3}):
        sandbox.set_metric_usage("default", "m", **usage)
        assert error(api("DELETE", "/metrics/default/m"), 400, "invalid_request") == used_message
    sandbox.set_metric_usage("default", "m", guarded_rollouts=0)

    assert api("DELETE", "/metrics/default/m").status_code == 204
    assert api("GET", "/metrics/default/m").status_code == 404


def test_metric_usage__counts_shown_only_when_expanded(sandbox, api):
    """Contract MET-USAGE-1: experimentCount and metricGroupCount only when expanded, the
    active counts always; the counts are not part of the patchable body."""
    api.metric()
    answer = sandbox.set_metric_usage(
        "default", "m", experiments=3, active_experiments=1, metric_groups=2
    )
    assert answer["guarded_rollouts"] == 0 and answer["experiments"] == 3
    kept = sandbox.set_metric_usage("default", "m", active_guarded_rollouts=1)
    assert (kept["experiments"], kept["active_guarded_rollouts"]) == (3, 1)

    plain = api("GET", "/metrics/default/m").json()
    assert (plain["activeExperimentCount"], plain["activeGuardedRolloutCount"]) == (1, 1)
    assert "experimentCount" not in plain and "metricGroupCount" not in plain
    expanded = api(
        "GET", "/metrics/default/m", params={"expand": "experimentCount,metricGroupCount"}
    ).json()
    assert (expanded["experimentCount"], expanded["metricGroupCount"]) == (3, 2)
    listed = api("GET", "/metrics/default", params={"expand": "experimentCount"}).json()
    assert listed["items"][0]["experimentCount"] == 3
    assert "experimentCount" not in api("GET", "/metrics/default").json()["items"][0]
    for path in ("/experimentCount", "/activeExperimentCount", "/metricGroupCount"):
        patched = api.patch("m", [{"op": "add", "path": path, "value": 0}])
        error(patched, 400, "invalid_request")
    assert api("GET", "/metrics/default/m?expand=experimentCount").json()["experimentCount"] == 3


def test_metric_usage__control_unknown_metric_or_bad_count__refused(sandbox, api):
    """Contract MET-USAGE-1: the control refuses a metric that does not exist (404) and a
    count that is not a non-negative integer (400)."""
    api.metric()

    def put(path: str, **body) -> int:
        url = f"{sandbox.base_url}/_sandbox/{path}"
        return requests.put(url, json={"project": "default", **body}, timeout=5).status_code

    assert put("metric-usage", key="nope", experiments=1) == 404
    assert put("races", key="nope") == 404
    assert put("metric-usage", key="m", experiments=-1) == 400
    assert put("metric-usage", key="m", experiments=True) == 400
    assert put("races", key="m", count="2") == 400
    assert put("metric-usage", key="m", metric_groups=1) == 200


def test_metric_list__usage_and_maintainer_filters(sandbox, api):
    """Contract MET-USAGE-1: hasConnections, metricUsedIn, maintainerIds and eventKeys
    filters, in LaunchDarkly's syntax."""
    member_id = api("GET", "/caller-identity").json()["memberId"]
    for key, event in (("exp", "a"), ("rollout", "b"), ("group", "c"), ("idle", "a")):
        api.metric(key=key, eventKey=event)
    sandbox.set_metric_usage("default", "exp", experiments=1)
    sandbox.set_metric_usage("default", "rollout", guarded_rollouts=1)
    sandbox.set_metric_usage("default", "group", metric_groups=1)
    service = Api(sandbox.base_url, sandbox.mint_token("writer", service=True))
    service.metric(key="orphan", eventKey="z")

    assert api.listed(filter="hasConnections equals true") == ["exp", "group", "rollout"]
    assert api.listed(filter="hasConnections equals false") == ["idle", "orphan"]
    assert api.listed(filter="metricUsedIn equals experiments") == ["exp"]
    assert api.listed(filter="metricUsedIn equals guarded_rollouts") == ["rollout"]
    assert api.listed(filter="metricUsedIn equals any") == ["exp", "rollout"]
    assert api.listed(filter="metricUsedIn equals none") == ["group", "idle", "orphan"]
    assert api.listed(filter=f'maintainerIds anyOf ["{member_id}"]') == [
        "exp",
        "group",
        "idle",
        "rollout",
    ]
    assert api.listed(filter='eventKeys anyOf ["a","z"]') == ["exp", "idle", "orphan"]
    assert api.listed(filter="eventKeys anyOf [b],hasConnections equals true") == ["rollout"]
    bad = api("GET", "/metrics/default", params={"filter": "metricUsedIn equals flags"})
    error(bad, 400, "invalid_request")


# --- races, maintainers, immutable fields ---------------------------------------------------


def test_metric_patch__lost_race__409_and_the_other_edit_stands(sandbox, api):
    """Contract MET-409-1: a patch that loses a race is 409 optimistic_locking_error and
    not applied; the concurrent edit is."""
    api.metric(name="Signups")
    sandbox.set_race("default", "m", count=2)
    rename = [{"op": "add", "path": "/description", "value": "mine"}]

    first = api.patch("m", rename)
    assert error(first, 409, "optimistic_locking_error") == (
        "Conflict: the metric was changed by another request; re-read it and retry"
    )
    error(api.patch("m", rename), 409, "optimistic_locking_error")
    current = api("GET", "/metrics/default/m").json()
    assert current["name"] == "Signups (edited concurrently) (edited concurrently)"
    assert current["_version"] == 3 and "description" not in current

    stale = api.patch("m", [{"op": "test", "path": "/_version", "value": 1}, *rename])
    error(stale, 409, "optimistic_locking_error")
    retried = api.patch("m", [{"op": "test", "path": "/_version", "value": 3}, *rename])
    assert retried.status_code == 200 and retried.json()["description"] == "mine"
    assert retried.json()["_versionId"] != current["_versionId"]


def test_metric_maintainer__set_from_caller_and_patchable(sandbox, api):
    """Contract MET-MAINT-1: postMetric ignores maintainerId; the token's member maintains
    the metric, a service token's metric has none; patching it to a member works."""
    member_id = api("GET", "/caller-identity").json()["memberId"]
    other = sandbox.create_account("Other")["member"]["id"]

    created = api.metric(maintainerId=other)
    assert created["maintainerId"] == member_id and created["_maintainer"]["_id"] == member_id
    service = Api(sandbox.base_url, sandbox.mint_token("writer", service=True))
    orphan = service.metric(key="orphan")
    assert "maintainerId" not in orphan and "_maintainer" not in orphan

    adopted = api.patch("orphan", [{"op": "add", "path": "/maintainerId", "value": member_id}])
    assert adopted.status_code == 200 and adopted.json()["_maintainer"]["_id"] == member_id
    unknown = api.patch("m", [{"op": "replace", "path": "/maintainerId", "value": other}])
    assert "maintainerId" in error(unknown, 400, "invalid_request")


@pytest.mark.parametrize(("path", "value"), [("/kind", "pageview"), ("/key", "renamed")])
def test_metric_patch__kind_and_key__immutable(api, path, value):
    """Contract MET-IMMUT-1: a metric's kind and key cannot be edited."""
    api.metric()
    error(api.patch("m", [{"op": "replace", "path": path, "value": value}]), 400, "invalid_request")
    assert api("GET", "/metrics/default/m").json()["_version"] == 1


def test_metric_patch__kind_replaced_by_the_same_value__accepted_as_terraform_sends_it(api):
    """Contract MET-IMMUT-1 (open): the Terraform provider's update patch always
    replaces /kind with the value the metric has; that changes nothing."""
    api.metric()
    same = [
        {"op": "replace", "path": "/kind", "value": "custom"},
        {"op": "replace", "path": "/name", "value": "Renamed"},
    ]
    answer = api.patch("m", same)
    assert answer.status_code == 200 and answer.json()["kind"] == "custom"
    assert answer.json()["name"] == "Renamed"


# --- tokens and caller identity ----------------------------------------------------------


def token_id(sandbox, token: str) -> str:
    return Api(sandbox.base_url, token)("GET", "/caller-identity").json()["tokenId"]


def test_get_token__self_any_role__others_need_a_writer(sandbox, api, writer_token):
    """Contract TOK-1: a token reads itself; another token of the account needs a writer;
    another account's or an unknown id is 404."""
    reader_token = sandbox.mint_token("reader")
    reader = Api(sandbox.base_url, reader_token)
    reader_id, writer_id = token_id(sandbox, reader_token), token_id(sandbox, writer_token)
    other = sandbox.create_account("Other")
    other_id = token_id(sandbox, other["token"])

    own = reader("GET", f"/tokens/{reader_id}")
    assert own.status_code == 200
    body = own.json()
    assert (body["_id"], body["role"], body["serviceToken"]) == (reader_id, "reader", False)
    assert body["token"] == reader_token[-4:] and reader_token not in own.text
    assert body["memberId"] == body["ownerId"] == body["_member"]["_id"]
    assert body["customRoleIds"] == [] and body["inlineRole"] == []
    assert body["defaultApiVersion"] == 20240415
    assert body["_links"]["self"]["href"] == f"/api/v2/tokens/{reader_id}"
    error(reader("GET", f"/tokens/{writer_id}"), 403, "forbidden")
    assert api("GET", f"/tokens/{reader_id}").json()["role"] == "reader"
    error(api("GET", f"/tokens/{other_id}"), 404, "not_found")
    error(api("GET", "/tokens/000000000000000000000000"), 404, "not_found")


def test_get_token__service_and_inline_role(sandbox, api):
    """Contract TOK-1: service tokens and inline roles; `permissions` become an inline role."""
    service = sandbox.mint_token("reader", service=True)
    importer = sandbox.mint_token("no_access", permissions=["importEventData"])
    statement = {"effect": "allow", "actions": ["viewProject"], "resources": ["proj/*"]}
    custom = sandbox.mint_token("no_access", inline_role=[statement])
    owner_id = api("GET", "/members/me").json()["_id"]

    service_rep = api("GET", f"/tokens/{token_id(sandbox, service)}").json()
    assert service_rep["serviceToken"] is True and service_rep["memberId"] == owner_id
    importer_rep = api("GET", f"/tokens/{token_id(sandbox, importer)}").json()
    assert importer_rep["role"] == "no_access"
    assert importer_rep["inlineRole"] == [
        {"effect": "allow", "actions": ["importEventData"], "resources": ["proj/*:env/*"]}
    ]
    assert api("GET", f"/tokens/{token_id(sandbox, custom)}").json()["inlineRole"] == [statement]
    bad = requests.post(
        f"{sandbox.base_url}/_sandbox/tokens",
        json={"role": "no_access", "inline_role": [{"effect": "maybe"}]},
        timeout=5,
    )
    assert bad.status_code == 400


def test_caller_identity__api_tokens_have_no_scopes__oauth_keeps_its_scope(sandbox, api):
    """Contract ID-1: personal and service tokens send no `scopes`; a service token has no
    member (and /members/me is 404); OAuth tokens keep their granted scope."""
    personal = api("GET", "/caller-identity").json()
    assert "scopes" not in personal
    assert (personal["authKind"], personal["tokenKind"], personal["serviceToken"]) == (
        "token",
        "personal",
        False,
    )
    assert personal["memberId"]

    service = Api(sandbox.base_url, sandbox.mint_token("writer", service=True))
    identity = service("GET", "/caller-identity").json()
    assert "scopes" not in identity and "memberId" not in identity
    assert (identity["tokenKind"], identity["serviceToken"]) == ("service", True)
    error(service("GET", "/members/me"), 404, "not_found")

    verifier, challenge = pkce_pair()
    code = authorize(sandbox, challenge=challenge)["code"]
    access = exchange(sandbox, code, verifier).json()["access_token"]
    oauth = Api(sandbox.base_url, f"Bearer {access}")("GET", "/caller-identity").json()
    assert (oauth["authKind"], oauth["tokenKind"]) == ("oauth", "oauth")
    assert oauth["scopes"] == ["writer"]


def test_metric__unit_dropped_from_settings__kept_and_other_patches_work(api):
    """Contract EXP-3: patchMetric checks only the units a patch adds (a sandbox choice:
    LaunchDarkly does not say what happens to metrics naming a unit no longer registered)."""
    api.settings(("user", True), "organization")
    api.metric(randomizationUnits=["organization"])
    api.settings(("user", True))

    renamed = api.patch("m", [{"op": "replace", "path": "/name", "value": "Renamed"}])

    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["randomizationUnits"] == ["organization"]
    added = api.patch("m", [{"op": "add", "path": "/randomizationUnits/-", "value": "device"}])
    assert "device" in error(added, 400, "invalid_request")
