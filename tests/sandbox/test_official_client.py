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

    metrics.delete_metric("default", "signup-count")
    with pytest.raises(ApiException) as missing:
        metrics.get_metric("default", "signup-count")
    assert missing.value.status == 404


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
    assert identity.auth_kind == "token" and identity.scopes == ["writer"]
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
