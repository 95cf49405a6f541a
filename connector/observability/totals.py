"""Running totals that every process of the connector adds to and /metrics reads.

Why not prometheus-client's multiprocess mode: it sums files of one machine's
processes, and workers may run on other hosts than the web process (nothing in the
code assumes one host), so their counts would silently be missing from /metrics.
The totals live where the other shared state lives (connector.shared_state): a Redis
hash when REDIS_URL is set (HINCRBYFLOAT needs no lock, one round trip per call
observed), otherwise one JSON file under VAR_DIR/state, updated under a file lock.

Observing must never fail or slow the work observed: every error is swallowed (logged
once a minute at most) and the file lock is waited for briefly.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable

from django.conf import settings

from connector.shared_state import redis_client, shared_lock

log = logging.getLogger(__name__)

REDIS_KEY = "prometheus:totals"
FILE_NAME = "prometheus-totals.json"
LOCK_WAIT_S = 0.5

# (metric name, series: the labels as canonical JSON, amount)
Increment = tuple[str, str, float]

_last_complaint = 0.0


def series(**labels: str) -> str:
    """A series' labels, encoded the same whatever their order."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


def add(increments: Iterable[Increment]) -> None:
    """Add every amount to its total, in one step; never raises."""
    fields = [(f"{metric}\t{labels}", amount) for metric, labels, amount in increments]
    if not fields:
        return
    try:
        if settings.REDIS_URL:
            pipe = redis_client().pipeline(transaction=False)
            for field, amount in fields:
                pipe.hincrbyfloat(REDIS_KEY, field, amount)
            pipe.execute()
        else:
            with shared_lock("prometheus-totals", timeout=5, wait=LOCK_WAIT_S):
                totals = _read_file()
                for field, amount in fields:
                    totals[field] = totals.get(field, 0.0) + amount
                path = _file()
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(totals))
                tmp.replace(path)  # atomic: a scrape never reads half a file
    except Exception as exc:
        _complain(exc)


def read() -> dict[str, dict[str, float]]:
    """Every total: {metric name: {series: amount}}."""
    if settings.REDIS_URL:
        answer: dict[bytes, bytes] = redis_client().hgetall(REDIS_KEY)  # type: ignore[assignment]
        raw = {field.decode(): float(value) for field, value in answer.items()}
    else:
        raw = _read_file()
    totals: dict[str, dict[str, float]] = {}
    for field, amount in raw.items():
        metric, _, labels = field.partition("\t")
        totals.setdefault(metric, {})[labels] = amount
    return totals


def _file():
    folder = settings.VAR_DIR / "state"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / FILE_NAME


def _read_file() -> dict[str, float]:
    path = _file()
    return json.loads(path.read_text()) if path.exists() else {}


def _complain(exc: Exception) -> None:
    global _last_complaint
    now = time.monotonic()
    if now - _last_complaint > 60:
        _last_complaint = now
        log.warning("metrics not recorded: %s: %s", type(exc).__name__, exc)
