"""Drills: event delivery in real Celery workers while things go wrong. Workers are
killed with SIGKILL mid-delivery and the broker is restarted; whatever was sent twice,
LaunchDarkly (the sandbox) counts once: its deduplicated count is exactly what the
track endpoint accepted, and its count of repeated payloads shows the resends.

An import sweeper runs throughout (what beat's `imports.sweep` does, every second): a
wake lost with a killed worker or a restarted broker is found again."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import OperationalError, connection

from connector.imports.models import BatchStatus, ImportBatch
from tests.imports.conftest import occurrence
from tests.sync.test_drills import _DedicatedRedis
from tests.workers import ROOT, start_worker, stop_worker, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = {"pool": "threads", "concurrency": 4}
COUNT = 6000
DRILL_ENV = {
    "IMPORT_BATCH_EVENTS": "250",
    "IMPORT_DRAIN_SLICE_S": "1",
    "SYNC_READ_TIMEOUT_S": "3",
    "IMPORT_BACKOFF_CAP_S": "0.5",
}

# Beat runs `imports.sweep` as a task, and Celery closes a task's broken database
# connection; a loop of its own must do so itself, or one restart of the database
# leaves it with a dead connection for good.
_IMPORT_SWEEPER = """
import sys, time
import django
django.setup()
from django.db import close_old_connections, connection
from connector.imports import delivery
from connector.imports.tasks import imports_drain
while True:
    close_old_connections()
    try:
        for tenant_id, environment in delivery.delivery_due():
            imports_drain.delay(tenant_id, environment)
    except Exception as exc:  # the broker or database is away for a moment
        print("import sweeper:", type(exc).__name__, exc, file=sys.stderr)
        connection.close()
    time.sleep(float(sys.argv[1]))
"""


def _sweeper(**env: str) -> subprocess.Popen:
    full = worker_env(**env)
    full.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
    return subprocess.Popen([sys.executable, "-c", _IMPORT_SWEEPER, "1"], cwd=ROOT, env=full)


def _delivered(workspace) -> bool:
    batches = ImportBatch.objects.unscoped().filter(tenant=workspace)
    return (
        batches.exists()
        and not batches.exclude(status=BatchStatus.DELIVERED).exists()
        and (sum(batches.values_list("count", flat=True)) == COUNT)
    )


def _accept_all(importing) -> int:
    accepted = 0
    for start in range(0, COUNT, 500):
        answer = importing.track(
            [occurrence("signup", f"u-{i}") for i in range(start, start + 500)]
        )
        assert answer.status_code == 200
        accepted += answer.json()["counts"]["accepted"]
    return accepted


def test_drill__workers_sigkilled_during_delivery__counted_exactly_once(importing, workspace):
    ld = importing.ld
    ld.set_faults(rate=0, latency_ms=150)  # each send takes a while: kills land mid-send
    env = {"LAUNCHDARKLY_BASE_URL": ld.base_url, **DRILL_ENV}
    workers = [start_worker(hostname=f"import{n}@%h", **THREADS, **env) for n in range(2)]
    sweeper = _sweeper(**env)
    kills = 0
    try:
        accepted = _accept_all(importing)
        started = time.monotonic()
        while not _delivered(workspace) and time.monotonic() - started < 120:
            time.sleep(1.0)
            if kills < 4 and not _delivered(workspace):
                victim = kills % 2
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                kills += 1
                workers[victim] = start_worker(hostname=f"import{victim}@%h", **THREADS, **env)
    finally:
        for process in [*workers, sweeper]:
            stop_worker(process)
    ld.set_faults(rate=0, latency_ms=0)

    report = ld.events()
    print(f"kills: {kills}, payloads sent twice: {report['duplicate_payloads']}")
    assert accepted == COUNT and kills >= 2
    assert _delivered(workspace)
    assert importing.imported() == {"signup": COUNT}


def test_drill__broker_restarted_during_delivery__counted_exactly_once(importing, workspace):
    if not settings.REDIS_URL:
        pytest.skip(
            "embedded configuration: the filesystem broker is files on this machine's "
            "disk, not a process, so there is no broker to restart"
        )
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    ld = importing.ld
    ld.set_faults(rate=0, latency_ms=150)
    broker = _DedicatedRedis()
    broker.start()
    env = {"LAUNCHDARKLY_BASE_URL": ld.base_url, "REDIS_URL": broker.url, **DRILL_ENV}
    workers = [start_worker(hostname=f"import{n}@%h", **THREADS, **env) for n in range(2)]
    sweeper = _sweeper(**env)
    restarts = 0
    try:
        accepted = _accept_all(importing)
        started = time.monotonic()
        next_restart = started + 2
        while not _delivered(workspace) and time.monotonic() - started < 120:
            time.sleep(0.5)
            for n, process in enumerate(workers):
                if process.poll() is not None:  # as a process manager would
                    workers[n] = start_worker(hostname=f"import{n}@%h", **THREADS, **env)
            if restarts < 2 and time.monotonic() >= next_restart and not _delivered(workspace):
                broker.stop()  # no persistence: every queued drain is lost
                time.sleep(1)
                broker.start()
                restarts += 1
                next_restart = time.monotonic() + 3
    finally:
        for process in [*workers, sweeper]:
            stop_worker(process)
        broker.close()
    ld.set_faults(rate=0, latency_ms=0)

    print(f"broker restarts: {restarts}, payloads sent twice: {ld.events()['duplicate_payloads']}")
    assert accepted == COUNT and restarts >= 1
    assert _delivered(workspace)
    assert importing.imported() == {"signup": COUNT}


def _restart_postgres() -> None:
    version = sorted(path.name for path in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_drill__database_restarted_during_delivery__counted_exactly_once(importing, workspace):
    if connection.vendor != "postgresql":
        pytest.skip("embedded configuration: SQLite is a file, not a server to restart")
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        pytest.skip("this machine's PostgreSQL is not a local cluster the test may restart")
    ld = importing.ld
    ld.set_faults(rate=0, latency_ms=150)
    env = {"LAUNCHDARKLY_BASE_URL": ld.base_url, **DRILL_ENV}
    workers = [start_worker(hostname=f"import{n}@%h", **THREADS, **env) for n in range(2)]
    sweeper = _sweeper(**env)
    restarts = 0
    try:
        accepted = _accept_all(importing)
        started = time.monotonic()
        next_restart = started + 2
        while time.monotonic() - started < 120:
            time.sleep(0.5)
            for n, process in enumerate(workers):
                if process.poll() is not None:  # as a process manager would
                    workers[n] = start_worker(hostname=f"import{n}@%h", **THREADS, **env)
            if restarts < 2 and time.monotonic() >= next_restart:
                connection.close()  # this process's connection dies with the server
                _restart_postgres()
                restarts += 1
                next_restart = time.monotonic() + 3
                continue
            try:
                if restarts == 2 and _delivered(workspace):
                    break
            except OperationalError:
                connection.close()
    finally:
        for process in [*workers, sweeper]:
            stop_worker(process)
    ld.set_faults(rate=0, latency_ms=0)

    print(
        f"database restarts: {restarts}, payloads sent twice: {ld.events()['duplicate_payloads']}"
    )
    assert accepted == COUNT and restarts == 2
    assert _delivered(workspace)
    assert importing.imported() == {"signup": COUNT}
