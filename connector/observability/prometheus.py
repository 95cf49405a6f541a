"""The connector's Prometheus metrics: their names, and what the code records
(connector.observability.scrape answers /metrics).

Counters and histograms are recorded by whichever process does the work (web, worker,
beat) into shared totals (connector.observability.totals says why not prometheus-
client's multiprocess mode). Gauges of the sync queue are computed from the database
at scrape time, so they are right however many workers there are, and labelled by
workspace slug, one series per workspace.
"""

from __future__ import annotations

import bisect

from connector.observability import totals
from connector.observability.totals import series

LD_REQUESTS = "connector_launchdarkly_requests"
LD_DURATION = "connector_launchdarkly_request_duration_seconds"
RATE_LIMIT_WAIT = "connector_launchdarkly_ratelimit_wait_seconds"
SYNC_ITEMS = "connector_sync_items"
QUEUE_DEPTH = "connector_sync_queue_depth"
OLDEST_PENDING_AGE = "connector_sync_oldest_pending_age_seconds"

# Seconds. LaunchDarkly answers in tens to hundreds of milliseconds; the read timeout
# of background calls is 20 s.
LD_DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)
# Seconds. Waits within a 10-second window are slept inline, longer ones deferred (up
# to MAX_WAIT_S, 15 minutes).
WAIT_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

HISTOGRAMS = {LD_DURATION: LD_DURATION_BUCKETS, RATE_LIMIT_WAIT: WAIT_BUCKETS}


# --- recording -------------------------------------------------------------------------


def _observation(metric: str, seconds: float, **labels: str) -> list[totals.Increment]:
    """A histogram observation as totals: its bucket's count, the sum and the count.
    Buckets are stored as they are hit, and made cumulative at scrape time."""
    buckets = HISTOGRAMS[metric]
    index = bisect.bisect_left(buckets, seconds)
    le = str(buckets[index]) if index < len(buckets) else "+Inf"
    return [
        (f"{metric}_bucket", series(**labels, le=le), 1.0),
        (f"{metric}_sum", series(**labels), seconds),
        (f"{metric}_count", series(**labels), 1.0),
    ]


def launchdarkly_call_observed(*, method: str, route: str, status: str, seconds: float) -> None:
    """One call to LaunchDarkly: `status` is the HTTP status, or `timeout` / `error`
    when no answer came."""
    totals.add(
        [
            (LD_REQUESTS, series(method=method, route=route, status=status), 1.0),
            *_observation(LD_DURATION, seconds, method=method, route=route),
        ]
    )


def sync_item_settled(*, outcome: str) -> None:
    """An item's attempt recorded with this status (done, failed, retrying, ...)."""
    totals.add([(SYNC_ITEMS, series(outcome=outcome), 1.0)])


def rate_limit_waited(*, seconds: float, deferred: bool) -> None:
    """Work waited for LaunchDarkly's rate limit: slept in the worker, or deferred
    (the item rescheduled for later)."""
    totals.add(_observation(RATE_LIMIT_WAIT, seconds, mode="deferred" if deferred else "inline"))
