"""The shapes of the LaunchDarkly answers the connector reads, from LaunchDarkly's
OpenAPI document (`CallerIdentityRep`, `Project`, `MetricRep`). Only the fields we use
are listed; LaunchDarkly sends more, and may leave any of these out."""

from __future__ import annotations

from typing import Any, TypedDict


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
