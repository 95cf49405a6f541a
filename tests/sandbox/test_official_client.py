"""LaunchDarkly's own Python client against the sandbox: if it deserialises every
answer, the sandbox's shapes match what real clients expect."""

from __future__ import annotations

import launchdarkly_api
import pytest
from launchdarkly_api.exceptions import ApiException


@pytest.fixture
def client(sandbox, writer_token):
    config = launchdarkly_api.Configuration(host=sandbox.base_url)
    config.api_key["ApiKey"] = writer_token
    with launchdarkly_api.ApiClient(config) as api_client:
        yield api_client


def test_official_client__metric_lifecycle__round_trips_without_deserialisation_errors(client):
    metrics = launchdarkly_api.MetricsApi(client)
    binary = metrics.post_metric(
        "default",
        launchdarkly_api.MetricPost(
            key="signup-binary",
            name="Signed up",
            kind="custom",
            event_key="signup",
            is_numeric=False,
            unit_aggregation_type="average",
            tags=["connector"],
        ),
    )
    count = metrics.post_metric(
        "default",
        launchdarkly_api.MetricPost(
            key="signup-count",
            kind="custom",
            event_key="signup",
            is_numeric=False,
            unit_aggregation_type="sum",
        ),
    )
    numeric = metrics.post_metric(
        "default",
        launchdarkly_api.MetricPost(
            key="order-value",
            kind="custom",
            event_key="order",
            is_numeric=True,
            unit="USD",
            success_criteria="HigherThanBaseline",
            unit_aggregation_type="sum",
            analysis_type="percentile",
            percentile_value=95,
            randomization_units=["user"],
        ),
    )
    assert (binary.unit_aggregation_type, count.unit_aggregation_type) == ("average", "sum")
    assert numeric.is_numeric and numeric.unit == "USD" and numeric.version == 1

    listed = metrics.get_metrics("default", limit=2)
    assert listed.total_count == 3 and len(listed.items) == 2 and "next" in listed.links
    assert {m.key for m in metrics.get_metrics("default", filter="tags:connector").items} == {
        "signup-binary"
    }

    patched = metrics.patch_metric(
        "default",
        "signup-binary",
        [launchdarkly_api.PatchOperation(op="replace", path="/name", value="Signed up (v2)")],
    )
    assert patched.name == "Signed up (v2)" and patched.version == 2
    assert metrics.get_metric("default", "signup-binary").name == "Signed up (v2)"

    # Only an archived metric can be deleted (contract MET-DELETE-1).
    metrics.patch_metric(
        "default",
        "signup-count",
        [launchdarkly_api.PatchOperation(op="replace", path="/archived", value=True)],
    )
    metrics.delete_metric("default", "signup-count")
    with pytest.raises(ApiException) as missing:
        metrics.get_metric("default", "signup-count")
    assert missing.value.status == 404


# Contract MET-CREATE-1: a duplicate key is 409.
def test_official_client__duplicate_key__raises_409(client):
    metrics = launchdarkly_api.MetricsApi(client)
    post = launchdarkly_api.MetricPost(key="dup", kind="custom", event_key="e", is_numeric=False)
    metrics.post_metric("default", post)
    with pytest.raises(ApiException) as conflict:
        metrics.post_metric("default", post)
    assert conflict.value.status == 409


def test_official_client__numeric_without_unit__raises_400(client):
    metrics = launchdarkly_api.MetricsApi(client)
    post = launchdarkly_api.MetricPost(
        key="no-unit",
        kind="custom",
        event_key="e",
        is_numeric=True,
        success_criteria="LowerThanBaseline",
    )
    with pytest.raises(ApiException) as invalid:
        metrics.post_metric("default", post)
    assert invalid.value.status == 400
    assert "unit" in invalid.value.body


def test_official_client__identity_projects_environments__deserialise(client):
    identity = launchdarkly_api.OtherApi(client).get_caller_identity()
    assert identity.auth_kind == "token" and identity.token_kind == "personal"
    assert identity.scopes is None and identity.service_token is False
    member = launchdarkly_api.AccountMembersApi(client).get_member("me")
    assert member.email == "demo@example.com"
    projects = launchdarkly_api.ProjectsApi(client).get_projects(expand="environments")
    assert {p.key for p in projects.items} == {"default", "mobile-app"}
    assert {e.key for e in projects.items[0].environments.items} == {"production", "test"}
    project = launchdarkly_api.ProjectsApi(client).get_project("mobile-app")
    assert project.name == "Mobile app"
    envs = launchdarkly_api.EnvironmentsApi(client).get_environments_by_project("default")
    assert envs.total_count == 2
    kinds = launchdarkly_api.ContextsApi(client).get_context_kinds_by_project_key("default")
    assert {k.key for k in kinds.items} >= {"user", "organization", "device"}


def test_official_client__experimentation_settings__get_and_put(client):
    """Contract EXP-1, EXP-2: the settings deserialise; PUT registers another unit."""
    experiments = launchdarkly_api.ExperimentsApi(client)
    seeded = experiments.get_experimentation_settings("default")
    assert [(u.randomization_unit, u.default) for u in seeded.randomization_units] == [
        ("user", True)
    ]

    updated = experiments.put_experimentation_settings(
        "default",
        launchdarkly_api.RandomizationSettingsPut(
            randomization_units=[
                launchdarkly_api.RandomizationUnitInput(randomization_unit="user", default=True),
                launchdarkly_api.RandomizationUnitInput(randomization_unit="organization"),
            ]
        ),
    )
    assert [u.randomization_unit for u in updated.randomization_units] == ["user", "organization"]
    assert updated.project_key == "default"
    with pytest.raises(ApiException) as invalid:
        experiments.put_experimentation_settings(
            "default",
            launchdarkly_api.RandomizationSettingsPut(
                randomization_units=[
                    launchdarkly_api.RandomizationUnitInput(randomization_unit="tenant")
                ]
            ),
        )
    assert invalid.value.status == 400


def test_official_client__archive_then_delete__refused_until_archived(client):
    """Contract MET-ARCHIVE-1, MET-DELETE-1: delete is 400 until the metric is archived."""
    metrics = launchdarkly_api.MetricsApi(client)
    metrics.post_metric(
        "default",
        launchdarkly_api.MetricPost(key="m", kind="custom", event_key="e", is_numeric=False),
    )
    with pytest.raises(ApiException) as refused:
        metrics.delete_metric("default", "m")
    assert refused.value.status == 400

    archive = launchdarkly_api.PatchOperation(op="replace", path="/archived", value=True)
    archived = metrics.patch_metric("default", "m", [archive])
    assert archived.archived is True and archived.archived_at
    listed = metrics.get_metrics("default", expand="experimentCount")
    assert listed.items[0].archived is True and listed.items[0].experiment_count == 0
    metrics.delete_metric("default", "m")
    assert metrics.get_metrics("default").total_count == 0


def test_official_client__lost_race__raises_409(client, sandbox):
    """Contract MET-409-1: a patch that loses a race raises ApiException 409."""
    metrics = launchdarkly_api.MetricsApi(client)
    metrics.post_metric(
        "default",
        launchdarkly_api.MetricPost(key="m", kind="custom", event_key="e", is_numeric=False),
    )
    sandbox.set_race("default", "m")
    rename = [launchdarkly_api.PatchOperation(op="replace", path="/name", value="Mine")]

    with pytest.raises(ApiException) as conflict:
        metrics.patch_metric("default", "m", rename)

    assert conflict.value.status == 409 and "optimistic_locking_error" in conflict.value.body
    assert metrics.get_metric("default", "m").name == "m (edited concurrently)"
    assert metrics.patch_metric("default", "m", rename).version == 3


def test_official_client__get_token__deserialises(client, sandbox):
    """Contract TOK-1: getToken's answer is the client's Token model."""
    service = sandbox.mint_token("reader", service=True, permissions=["importEventData"])
    own_id = launchdarkly_api.OtherApi(client).get_caller_identity().token_id
    tokens = launchdarkly_api.AccessTokensApi(client)

    own = tokens.get_token(own_id)
    assert own.id == own_id and own.role == "writer" and own.service_token is False
    service_config = launchdarkly_api.Configuration(host=sandbox.base_url)
    service_config.api_key["ApiKey"] = service
    with launchdarkly_api.ApiClient(service_config) as service_client:
        identity = launchdarkly_api.OtherApi(service_client).get_caller_identity()
        assert identity.service_token is True and identity.member_id is None
        itself = launchdarkly_api.AccessTokensApi(service_client).get_token(identity.token_id)
    assert itself.service_token is True and itself.member_id == own.member_id
    assert itself.inline_role[0].actions == ["importEventData"]
    with pytest.raises(ApiException) as missing:
        tokens.get_token("000000000000000000000000")
    assert missing.value.status == 404
