"""The shapes of the LaunchDarkly answers the connector reads, from LaunchDarkly's
OpenAPI document (`CallerIdentityRep`, `Project`, `MetricRep`, `MetricGroupRep`). Only
the fields we use are listed; LaunchDarkly sends more, and may leave any of these out."""

from __future__ import annotations

from typing import Any, TypedDict

from django.db import models


class AuthKind(models.TextChoices):
    """How a token is sent: API access tokens raw, OAuth access tokens as Bearer."""

    OAUTH = "oauth", "OAuth"
    API_TOKEN = "api_token", "API access token"


class CallerIdentity(TypedDict, total=False):
    accountId: str
    authKind: str  # "token" or "oauth"
    tokenKind: str
    tokenId: str
    tokenName: str
    clientId: str
    memberId: str
    serviceToken: bool
    scopes: list[str]


class Project(TypedDict, total=False):
    _id: str
    key: str
    name: str
    tags: list[str]


class Metric(TypedDict, total=False):
    _id: str
    _version: int
    _versionId: str
    _creationDate: int
    key: str
    name: str
    description: str
    kind: str  # "custom" for the connector's metrics
    isNumeric: bool
    eventKey: str
    unit: str
    successCriteria: str  # "HigherThanBaseline" or "LowerThanBaseline"
    unitAggregationType: str  # "average" or "sum"
    analysisType: str  # "mean" or "percentile"
    percentileValue: int
    randomizationUnits: list[str]
    tags: list[str]
    maintainerId: str
    _links: dict[str, Any]


class MetricInGroup(TypedDict, total=False):
    """`MetricInGroupRep`: a member metric as it is now, with its name in the group."""

    key: str
    name: str
    kind: str
    isNumeric: bool
    nameInGroup: str  # a funnel's steps only
    randomizationUnits: list[str]


class MetricGroup(TypedDict, total=False):
    """`MetricGroupRep` (beta API). `maintainer` is a `MaintainerRep`; the live API
    answers it as {key, kind, _member} (see metrics.groups.held_maintainer)."""

    _id: str
    _version: int
    key: str
    name: str
    kind: str  # "funnel" or "standard"
    description: str
    tags: list[str]
    maintainer: dict[str, Any]
    metrics: list[MetricInGroup]
    experimentCount: int  # getMetricGroup with expand=experimentCount only
    activeExperimentCount: int
    activeGuardedRolloutCount: int
    _links: dict[str, Any]
