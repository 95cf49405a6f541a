"""Real Celery workers for tests: a subprocess on the configured broker (Redis, or the
embedded filesystem transport) and the test database, exactly as in production."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

from connector.celery import app

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": test_database_url(), "VAR_DIR": str(settings.VAR_DIR)}
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    return env


def worker_command(
    *, concurrency: int = 1, pool: str | None = None, hostname: str | None = None
) -> list[str]:
    command = [sys.executable, "-m", "celery", "-A", "connector", "worker"]
    command += ["--loglevel", "WARNING", "--concurrency", str(concurrency)]
    if pool:
        command += ["--pool", pool]
    if hostname:
        command += ["--hostname", hostname]
    return [*command, "--without-gossip", "--without-mingle", "--without-heartbeat"]


def start_worker(
    *,
    concurrency: int = 1,
    pool: str | None = None,
    hostname: str | None = None,
    **extra_env: str,
) -> subprocess.Popen:
    """A worker process (not stopped for you: see `stop_worker`, or `running_worker`)."""
    env = worker_env(**extra_env)
    env.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
    return subprocess.Popen(
        worker_command(concurrency=concurrency, pool=pool, hostname=hostname),
        cwd=ROOT,
        env=env,
    )


def stop_worker(process: subprocess.Popen, timeout: float = 15) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_worker(
    concurrency: int = 1,
    *,
    pool: str | None = None,
    hostname: str | None = None,
    purge: bool = True,
    **extra_env: str,
):
    """A worker for the duration of the block. `pool` (e.g. "threads"), `hostname`
    (give each of several workers its own), `purge=False` when the worker uses another
    broker than this process (extra_env REDIS_URL), and any environment variables
    (settings come from the environment)."""
    if purge:
        app.control.purge()  # messages left by an earlier, interrupted run
    process = start_worker(
        concurrency=concurrency,
        pool=pool,
        hostname=hostname,
        **extra_env,
    )
    try:
        yield process
    finally:
        stop_worker(process)


_SWEEPER = """
import os, sys, time
import django
django.setup()
from connector.sync import services
from connector.sync.tasks import sync_pump
interval = float(sys.argv[1])
while True:
    try:
        for tenant_id in services.sweep_stale_claims():
            sync_pump.delay(tenant_id)
    except Exception as exc:  # the broker or database is away for a moment
        print("sweeper:", type(exc).__name__, exc, file=sys.stderr)
    time.sleep(interval)
"""


@contextmanager
def running_sweeper(interval: float = 1.0, **extra_env: str):
    """What beat's `sync.sweep` does, every `interval` seconds instead of every 30 s,
    in its own process on the workers' broker and database: frees stale claims and
    pumps every workspace with ready items (so it also starts runs)."""
    env = worker_env(**extra_env)
    env.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
    process = subprocess.Popen([sys.executable, "-c", _SWEEPER, str(interval)], cwd=ROOT, env=env)
    try:
        yield process
    finally:
        stop_worker(process, timeout=5)


def wait_until(condition: Callable[[], bool], timeout: float = 30, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
