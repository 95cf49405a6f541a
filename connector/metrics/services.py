"""Writes to the mappings: every change to what a workspace's metrics should be, or to
what is known of them in LaunchDarkly, goes through here. Each runs in the workspace
in scope."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from connector.metrics.models import MappingStatus, MetricGroup, MetricMapping


def mappings_store(
    *, new: Iterable[MetricMapping], changed: Iterable[MetricMapping], fields: Iterable[str]
) -> None:
    """Save what a plan chose: the new mappings, and `fields` of the changed ones."""
    MetricMapping.objects.bulk_create(list(new))
    MetricMapping.objects.bulk_update(list(changed), [*fields, "updated_at"])


def mapping_record(*, mapping_id: int, **fields: Any) -> None:
    """Store what sync learned of one mapping's metric (status, version, hash ...)."""
    MetricMapping.objects.filter(pk=mapping_id).update(**fields)


def mapping_mark(*, mapping: MetricMapping, status: str, detail: str) -> None:
    MetricMapping.objects.filter(pk=mapping.pk).update(status=status, status_detail=detail[:2000])


def mappings_forget_remote(*, detail: str) -> None:
    """The connection points elsewhere now: what the mappings knew of LaunchDarkly
    (managed, applied, version) describes the old place, and is forgotten."""
    MetricMapping.objects.filter().update(
        managed=False,
        applied_hash="",
        ld_version=None,
        status=MappingStatus.PENDING,
        status_detail=detail,
    )


def groups_store(
    *, new: Iterable[MetricGroup], changed: Iterable[MetricGroup], fields: Iterable[str]
) -> None:
    """Save the metric groups a plan chose: the new ones, and `fields` of the others."""
    MetricGroup.objects.bulk_create(list(new))
    MetricGroup.objects.bulk_update(list(changed), [*fields, "updated_at"])


def group_record(*, group_id: int, **fields: Any) -> None:
    """Store what sync learned of one metric group in LaunchDarkly (status, version,
    hash ...), as `mapping_record` does for a metric."""
    MetricGroup.objects.filter(pk=group_id).update(**fields)


def group_mark(*, group: MetricGroup, status: str, detail: str) -> None:
    MetricGroup.objects.filter(pk=group.pk).update(status=status, status_detail=detail[:2000])


def groups_forget_remote(*, detail: str) -> None:
    """As `mappings_forget_remote`, for the metric groups: the connection points
    elsewhere, so what they knew of LaunchDarkly describes the old place."""
    MetricGroup.objects.filter().update(
        managed=False,
        applied_hash="",
        ld_version=None,
        status=MappingStatus.PENDING,
        status_detail=detail,
    )
