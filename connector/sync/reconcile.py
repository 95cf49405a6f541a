"""One item's conversation with LaunchDarkly: make the metric there match the mapping.

Every step is safe to repeat. Keys are deterministic, so a create that was answered
but never recorded (a crash, a dropped connection) meets a 409 next time and is
resolved by reading the metric back: the same managed fields mean it is ours and
done; different ones are a conflict shown with the difference. Only metrics the
connector created or adopted are ever changed or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.launchdarkly import errors
from connector.launchdarkly.client import LaunchDarklyClient
from connector.metrics.desired import MANAGED_TAG, differences, fingerprint, json_patch, metric_body
from connector.metrics.models import MetricMapping
from connector.sync.models import Action

# Each LaunchDarkly call goes through the caller's rate-limit gate, named by route.
Call = Callable[[str, Callable[[LaunchDarklyClient], Any]], Any]

ROUTE_LIST = "GET /api/v2/metrics/{projectKey}"
ROUTE_CREATE = "POST /api/v2/metrics/{projectKey}"
ROUTE_GET = "GET /api/v2/metrics/{projectKey}/{metricKey}"
ROUTE_PATCH = "PATCH /api/v2/metrics/{projectKey}/{metricKey}"
ROUTE_DELETE = "DELETE /api/v2/metrics/{projectKey}/{metricKey}"

# LaunchDarkly: what each operation answers when it succeeds (postMetric 201,
# getMetric and patchMetric 200, deleteMetric 204). The client returns bodies, not
# statuses, and turns every other answer into an error, so a success is one of these.
CREATED, OK, NO_CONTENT, NOT_FOUND = 201, 200, 204, 404


@dataclass
class Outcome:
    done: bool  # False: a conflict for a person to look at
    note: str = ""
    metric: dict[str, Any] | None = None  # LaunchDarkly's representation afterwards
    sent_hash: str = ""
    deleted: bool = False
    conflict: dict[str, tuple] = field(default_factory=dict)
    # The HTTP status of the call that settled it (None when no call was needed).
    http_status: int | None = None


def describe(diff: dict[str, tuple]) -> str:
    return "; ".join(
        f"{name}: we want {json.dumps(want)}, LaunchDarkly has {json.dumps(have)}"
        for name, (want, have) in diff.items()
    )


def reconcile(*, mapping: MetricMapping, action: str, call: Call) -> Outcome:
    project, key = mapping.project_key, mapping.metric_key
    body = metric_body(mapping, event_key=mapping.source_event.key)
    sent = fingerprint(body)

    if action == Action.DELETE:
        if not mapping.managed:
            return Outcome(done=True, note="Not created or adopted by the connector: left alone.")
        try:
            call(ROUTE_DELETE, lambda c: c.delete_metric(project, key))
        except errors.NotFound:  # already gone: the goal is reached
            return Outcome(
                done=True,
                deleted=True,
                note="Already gone from LaunchDarkly.",
                http_status=NOT_FOUND,
            )
        return Outcome(
            done=True, deleted=True, note="Deleted in LaunchDarkly.", http_status=NO_CONTENT
        )

    if action == Action.CREATE:
        try:
            metric = call(ROUTE_CREATE, lambda c: c.create_metric(project, body))
            return Outcome(
                done=True, metric=metric, sent_hash=sent, note="Created.", http_status=CREATED
            )
        except errors.Conflict:
            return _resolve_existing(mapping, body, sent, call, adopt_if_different=False)

    # update and adopt start from what LaunchDarkly holds now.
    return _resolve_existing(mapping, body, sent, call, adopt_if_different=True)


def _resolve_existing(
    mapping: MetricMapping, body: dict, sent: str, call: Call, *, adopt_if_different: bool
) -> Outcome:
    project, key = mapping.project_key, mapping.metric_key
    try:
        current = call(ROUTE_GET, lambda c: c.get_metric(project, key))
    except errors.NotFound:
        # Deleted in LaunchDarkly (or never there): create it.
        metric = call(ROUTE_CREATE, lambda c: c.create_metric(project, body))
        return Outcome(
            done=True,
            metric=metric,
            sent_hash=sent,
            note="Created (was missing).",
            http_status=CREATED,
        )

    diff = differences(body, current)
    if not diff:
        note = "Already in LaunchDarkly as wanted." if mapping.managed else "Adopted."
        return Outcome(done=True, metric=current, sent_hash=sent, note=note, http_status=OK)

    ours = mapping.managed or MANAGED_TAG in (current.get("tags") or [])
    if not (ours or adopt_if_different):
        return Outcome(
            done=False,
            conflict=diff,
            note="A metric with this key exists in LaunchDarkly with other fields: "
            + describe(diff),
        )
    patched = call(ROUTE_PATCH, lambda c: c.patch_metric(project, key, json_patch(body, current)))
    return Outcome(
        done=True,
        metric=patched,
        sent_hash=sent,
        note="Updated: " + ", ".join(diff),
        http_status=OK,
    )
