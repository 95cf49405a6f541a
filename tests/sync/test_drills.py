"""Drills: the sync engine in real Celery workers while things go wrong.

Workers are killed with SIGKILL mid-run, the broker is restarted, the sandbox answers
with faults; every drill ends with each item done exactly once in LaunchDarkly. The
sweeper runs throughout (tests.workers.running_sweeper: what beat's `sync.sweep`
does, every second, with a short SYNC_STALE_CLAIM_S); it also starts the runs, so a
run's first pump goes to whichever broker the drill's workers use.

Workers run `--pool threads --concurrency 8`: an item spends its time waiting on
LaunchDarkly, so threads give many slots per process cheaply.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter

import pytest
import requests
from django.conf import settings

from connector.metrics.desired import metric_body
from connector.metrics.models import MetricMapping
from connector.sync.models import FINISHED_STATUSES, ItemStatus, SyncItem
from connector.sync.tasks import sync_item, sync_pump
from tenants.scope import tenant_scope
from tests.sync.conftest import apply_plan, make_events, sandbox_metrics
from tests.workers import (
    running_sweeper,
    running_worker,
    start_worker,
    stop_worker,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

DRILL_ENV = {"SYNC_STALE_CLAIM_S": "3", "SYNC_BACKOFF_BASE_S": "0.2", "SYNC_BACKOFF_CAP_S": "2"}
THREADS = {"pool": "threads", "concurrency": 8}


def _env(ld, **more: str) -> dict[str, str]:
    return {"LAUNCHDARKLY_BASE_URL": ld.base_url, **DRILL_ENV, **more}


def _plan(workspace, admin, count, **kwargs):
    """A run of `count` items. Applying it enqueues its first pump on this process's
    broker; the sweeper also pumps (on the drill's broker, where that differs)."""
    events = make_events(workspace, count, **kwargs)
    return apply_plan(workspace, admin.user, events)


def _statuses(run) -> Counter:
    return Counter(SyncItem.objects.unscoped().filter(run=run).values_list("status", flat=True))


def _finished(run) -> bool:
    return (
        not SyncItem.objects.unscoped()
        .filter(run=run)
        .exclude(status__in=FINISHED_STATUSES)
        .exists()
    )


def _assert_exactly_once(ld, run, count):
    statuses = _statuses(run)
    assert statuses == {ItemStatus.DONE: count}, statuses
    metrics = sandbox_metrics(ld)
    assert len(metrics) == count
    assert (
        len({(m["eventKey"], m["isNumeric"], m["unitAggregationType"]) for m in metrics}) == count
    )


def test_drill__workers_sigkilled_repeatedly__every_metric_created_once(
    connected, workspace, admin, ld
):
    ld.set_faults(rate=0, latency_ms=60)
    run = _plan(workspace, admin, 300)
    env = _env(ld)
    started = time.monotonic()
    workers = [start_worker(hostname=f"drill{n}@%h", **THREADS, **env) for n in range(2)]
    kills = 0
    try:
        with running_sweeper(1.0, **env):
            while not _finished(run) and time.monotonic() - started < 120:
                time.sleep(2.5)
                if kills < 4 and not _finished(run):
                    victim = kills % 2
                    workers[victim].send_signal(signal.SIGKILL)
                    workers[victim].wait()
                    kills += 1
                    workers[victim] = start_worker(hostname=f"drill{victim}@%h", **THREADS, **env)
    finally:
        for process in workers:
            stop_worker(process)
    ld.set_faults(rate=0, latency_ms=0)
    assert kills == 4
    _assert_exactly_once(ld, run, 300)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _DedicatedRedis:
    """A redis-server of the drill's own (never the shared one), restartable."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.folder = tempfile.mkdtemp(prefix="drill-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.folder,
            ],
            stdout=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis.from_url(self.url)
        assert wait_until(lambda: _pings(client), timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def test_drill__broker_restarted_mid_run__every_metric_created_once(
    connected, workspace, admin, ld
):
    if not settings.REDIS_URL:
        pytest.skip(
            "embedded configuration: the filesystem broker is files on this machine's "
            "disk, not a process, so there is no broker to restart"
        )
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    ld.set_faults(rate=0, latency_ms=60)
    run = _plan(workspace, admin, 300)
    broker = _DedicatedRedis()
    broker.start()
    # Broker, cache and locks all live in the drill's Redis: all of it goes away.
    env = _env(ld, REDIS_URL=broker.url)
    restarts = worker_exits = 0
    workers = [start_worker(hostname=f"drill{n}@%h", **THREADS, **env) for n in range(2)]
    try:
        with running_sweeper(1.0, **env):
            started = time.monotonic()
            next_restart = started + 3
            while not _finished(run) and time.monotonic() - started < 120:
                time.sleep(0.5)
                # As a process manager would: a worker that exited is started again.
                # (Celery's threads pool cannot cancel tasks when the broker connection
                # is lost, and the worker may exit on it.)
                for n, process in enumerate(workers):
                    if process.poll() is not None:
                        worker_exits += 1
                        workers[n] = start_worker(hostname=f"drill{n}@%h", **THREADS, **env)
                if restarts < 2 and time.monotonic() >= next_restart and not _finished(run):
                    broker.stop()  # with no persistence: every queued message is lost
                    time.sleep(1)
                    broker.start()
                    restarts += 1
                    next_restart = time.monotonic() + 4
    finally:
        for process in workers:
            stop_worker(process)
        broker.close()
    print(f"broker restarts: {restarts}, worker exits (restarted): {worker_exits}")
    ld.set_faults(rate=0, latency_ms=0)
    assert restarts == 2
    _assert_exactly_once(ld, run, 300)


def test_drill__flaky_launchdarkly__every_item_done_once(connected, workspace, admin, ld):
    # `slow` answers come after 3 s, past the workers' 1 s read timeout.
    ld.set_faults(
        rate=0.25,
        kinds=["500", "502", "503", "html", "truncated", "slow", "drop"],
        routes=["/api/v2/metrics"],
        latency_ms=20,
        slow_ms=3000,
    )
    run = _plan(workspace, admin, 500)
    env = _env(
        ld, SYNC_MAX_ATTEMPTS="30", SYNC_WINDOW_PER_WORKSPACE="16", SYNC_READ_TIMEOUT_S="1.0"
    )
    with (
        running_worker(hostname="drill0@%h", **THREADS, **env),
        running_worker(hostname="drill1@%h", **THREADS, **env),
        running_sweeper(1.0, **env),
    ):
        assert wait_until(lambda: _finished(run), timeout=150, interval=0.5), _statuses(run)
    faults = Counter(e["fault"] for e in ld.requests_since(0) if e.get("fault"))
    ld.set_faults(rate=0, latency_ms=0)
    assert set(faults) == {"500", "502", "503", "html", "truncated", "slow", "drop"}, faults
    _assert_exactly_once(ld, run, 500)
    retried = SyncItem.objects.unscoped().filter(run=run, attempts__gt=1).count()
    assert retried > 0


def test_drill__every_answer_400__every_item_failed_with_its_message_never_retried(
    connected, workspace, admin, ld
):
    run = _plan(workspace, admin, 20, numeric_every=0)
    with tenant_scope(workspace):
        for mapping in MetricMapping.objects.all():  # keys LaunchDarkly refuses
            mapping.metric_key = f"Bad Key {mapping.pk}"
            mapping.save(update_fields=["metric_key"])
        mapping = MetricMapping.objects.select_related("source_event").first()
        body = metric_body(mapping, event_key=mapping.source_event.key)
    refused = requests.post(
        f"{ld.base_url}/api/v2/metrics/default",
        json=body,
        headers={"Authorization": ld.mint_token("writer")},
        timeout=5,
    )
    assert refused.status_code == 400
    with running_worker(**THREADS, **_env(ld)), running_sweeper(1.0, **_env(ld)):
        assert wait_until(lambda: _finished(run), timeout=60, interval=0.3), _statuses(run)
    failed = list(SyncItem.objects.unscoped().filter(run=run))
    assert {i.status for i in failed} == {ItemStatus.FAILED}
    assert {i.attempts for i in failed} == {1}
    assert {i.last_http_status for i in failed} == {400}
    assert {i.error_message for i in failed} == {refused.json()["message"]}
    creates = [
        e for e in ld.requests_since(0) if e["method"] == "POST" and "/metrics/" in e["path"]
    ]
    assert len(creates) == 21  # one per item, and the probe above
    assert sandbox_metrics(ld) == []


def test_drill__every_task_delivered_many_times__one_metric_per_item(
    connected, workspace, admin, ld
):
    events = make_events(workspace, 50)
    run = apply_plan(workspace, admin.user, events)  # pumps once, on this process's broker
    item_ids = list(SyncItem.objects.unscoped().filter(run=run).values_list("pk", flat=True))
    with (
        running_worker(hostname="idem0@%h", purge=False, **THREADS, **_env(ld)),
        running_worker(hostname="idem1@%h", purge=False, **THREADS, **_env(ld)),
    ):
        for _ in range(3):
            for item_id in item_ids:
                sync_item.delay(workspace.pk, item_id)
        for _ in range(30):
            sync_pump.delay(workspace.pk)
        assert wait_until(lambda: _finished(run), timeout=90, interval=0.3), _statuses(run)
    _assert_exactly_once(ld, run, 50)
