"""Shared by the sync benchmarks (not a benchmark itself; `make bench` runs it as a no-op).

Each benchmark runs against processes it starts itself:

- a fresh database: a new SQLite file in a temporary VAR_DIR (embedded default), or,
  when DATABASE_URL names a PostgreSQL server, a database created for the benchmark
  on it (`<name>_<bench>`, dropped and recreated);
- with REDIS_URL set, Redis is broker, cache and locks (its database is flushed first:
  give the benchmark a database of its own); otherwise the embedded filesystem broker
  in the temporary VAR_DIR;
- the sandbox (`manage.py ldsandbox`) as a subprocess on a free port;
- Celery workers as subprocesses (threads pool: items are I/O-bound).

Usage: `env = harness.setup("name")` BEFORE anything imports Django models, then the
other helpers.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ENV: dict[str, str] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fresh_postgres(url: str, bench: str) -> str:
    import psycopg

    parts = urlsplit(url)
    name = f"{(parts.path.lstrip('/') or 'postgres')}_{bench}"
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def setup(bench: str, **extra_env: str) -> dict[str, str]:
    """Fresh state for the benchmark `bench`; sets this process's environment (for
    Django) and returns the environment for the worker subprocesses."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"bench-{bench}-"))
    env = {"VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1", **extra_env}
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql://")):
        env["DATABASE_URL"] = _fresh_postgres(database_url, bench)
    else:
        env["DATABASE_URL"] = f"sqlite:///{var_dir / 'db.sqlite3'}"
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    call_command("migrate", verbosity=0, interactive=False)
    ENV.update(env)
    return env


def configuration() -> str:
    from django.conf import settings

    db = "postgresql" if "postgresql" in settings.DATABASES["default"]["ENGINE"] else "sqlite"
    broker = "redis" if settings.REDIS_URL else "filesystem"
    return f"{db}+{broker}"


def cleanup() -> None:
    var_dir = ENV.get("VAR_DIR")
    if var_dir and Path(var_dir).name.startswith("bench-"):
        shutil.rmtree(var_dir, ignore_errors=True)


# --- the sandbox -----------------------------------------------------------------------


class Sandbox:
    """`manage.py ldsandbox` as a subprocess, steered through `/_sandbox/`."""

    def __init__(self) -> None:
        import requests

        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "ldsandbox", "--port", str(self.port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                sys.exit(f"sandbox exited early with status {self.process.returncode}")
            try:
                self.http.get(f"{self.base_url}/_sandbox/state", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    sys.exit("sandbox did not start within 30 s")
                time.sleep(0.1)
        os.environ["LAUNCHDARKLY_BASE_URL"] = self.base_url
        os.environ["LAUNCHDARKLY_EVENTS_URL"] = self.base_url
        ENV["LAUNCHDARKLY_BASE_URL"] = ENV["LAUNCHDARKLY_EVENTS_URL"] = self.base_url
        from django.conf import settings

        settings.LAUNCHDARKLY_BASE_URL = settings.LAUNCHDARKLY_EVENTS_URL = self.base_url

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(
            method, f"{self.base_url}/_sandbox/{path}", timeout=30, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def create_account(self, name: str) -> dict[str, Any]:
        return self.call("POST", "accounts", json={"name": name})

    def set_limits(self, **limits: Any) -> None:
        self.call("PUT", "limits", json=limits)

    def set_faults(self, **faults: Any) -> None:
        self.call("PUT", "faults", json=faults)

    def requests_since(self, seq: int = 0) -> list[dict[str, Any]]:
        """The whole request log after `seq` (follows the log's pages, if any)."""
        out: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", "requests", params={"since": seq})["requests"]
            if not page:
                return out
            out += page
            last = page[-1]["seq"]
            if last <= seq:
                return out
            seq = last

    def metrics(self, token: str, project: str = "default") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        url: str | None = f"{self.base_url}/api/v2/metrics/{project}?limit=50"
        while url:
            page = self.http.get(url, headers={"Authorization": token}, timeout=30).json()
            items += page["items"]
            nxt = page.get("_links", {}).get("next")
            url = f"{self.base_url}{nxt['href']}" if nxt else None
        return items

    def close(self) -> None:
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def too_many_per_window(log: list[dict[str, Any]], window_s: float = 10.0) -> tuple[int, int]:
    """(all 429 answers, 429 answers beyond the first in each window of the sandbox's
    fixed rate-limit windows)."""
    per_window: dict[int, int] = {}
    for entry in log:
        if entry.get("status") == 429:
            at = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
            window = int(at // window_s)
            per_window[window] = per_window.get(window, 0) + 1
    return sum(per_window.values()), sum(max(0, n - 1) for n in per_window.values())


# --- workspaces, connections, runs ------------------------------------------------------


def workspace_connected(name: str, token: str):
    """A workspace with an admin, connected with `token` through the connector's own
    service (as the settings page does), project `default`. Returns (tenant, user)."""
    from connector.connections.services import (
        connection_choose_project,
        connection_connect_api_token,
    )
    from tenants.models import Membership, Role, Tenant, User
    from tenants.scope import tenant_scope

    slug = name.lower().replace(" ", "-")
    tenant = Tenant.objects.create(name=name, slug=slug)
    user = User.objects.create_user(email=f"admin@{slug}.example.com", password="bench-pass-1234")
    Membership.objects.create(user=user, tenant=tenant, role=Role.ADMIN)
    with tenant_scope(tenant):
        connection = connection_connect_api_token(
            actor=user, instance="commercial", token=token
        ).connection
        connection_choose_project(actor=user, connection=connection, project_key="default")
    return tenant, user


def plan_for_events(tenant, user, count: int, *, prefix: str = "event", numeric_every: int = 3):
    """`count` source events and an applied plan creating one metric each; the run
    starts when the caller calls `start(run)` (so several runs can start at once)."""
    from unittest import mock

    from connector.metrics.models import MetricPlan
    from connector.planner.plans import Choices, plan_apply
    from connector.sources.models import SourceEvent, ValueKind
    from tenants.scope import tenant_scope

    with tenant_scope(tenant):
        events = SourceEvent.objects.bulk_create(
            SourceEvent(
                tenant=tenant,
                key=f"{prefix}_{i:05d}",
                name=f"Event {i}",
                value_kind=ValueKind.NUMERIC
                if numeric_every and i % numeric_every == 0
                else ValueKind.CONVERSION,
                unit="ms" if numeric_every and i % numeric_every == 0 else "",
            )
            for i in range(count)
        )
        plan = MetricPlan.objects.create(
            created_by=user,
            selection={"ids": [e.pk for e in events]},
            choices=Choices().to_json(),
        )
        with mock.patch("connector.sync.services.sync_run_start"):
            return plan_apply(plan=plan, actor=user)


def start(run) -> None:
    from connector.sync.services import _enqueue_pump

    _enqueue_pump(run.tenant_id)


def run_counts(run) -> dict[str, int]:
    from django.db.models import Count

    from connector.sync.models import SyncItem

    rows = SyncItem.objects.unscoped().filter(run_id=run.pk).values_list("status")
    return dict(rows.annotate(n=Count("pk")))


def run_finished(run) -> bool:
    from connector.sync.models import FINISHED_STATUSES, SyncItem

    unfinished = SyncItem.objects.unscoped().filter(run_id=run.pk)
    return not unfinished.exclude(status__in=FINISHED_STATUSES).exists()


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


# --- workers ----------------------------------------------------------------------------


@contextmanager
def workers(count: int = 2, *, pool: str = "threads", concurrency: int = 8, **extra_env: str):
    """`count` Celery workers (each `--pool pool --concurrency concurrency`)."""
    from connector.celery import app

    # Connecting a workspace may queue work for it (a pump) before its plan exists;
    # nothing may start before the benchmark says so.
    app.control.purge()
    processes = []
    env = {**os.environ, **ENV, **extra_env}
    for n in range(count):
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "connector",
                    "worker",
                    "--loglevel",
                    "WARNING",
                    "--pool",
                    pool,
                    "--concurrency",
                    str(concurrency),
                    "--hostname",
                    f"bench{n}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=env,
            )
        )
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def exited(processes: list[subprocess.Popen]) -> int:
    """How many of the workers died during the benchmark. A figure of every sync bench:
    a run that finished on fewer workers than it says measures something else."""
    return sum(process.poll() is not None for process in processes)


def tree_rss_kb(pid: int) -> dict[int, int]:
    """Resident memory (kB) of `pid` and every descendant, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out: dict[int, int] = {}
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out[current] = int(line.split()[1])
                        break
        except OSError:
            continue
        todo += children.get(current, [])
    return out


# --- output -------------------------------------------------------------------------------


def report(bench: str, figures: dict[str, tuple[Any, str]]) -> None:
    """One line per figure, `<figure>: <value> <unit>`, and bench/results/<bench>.json,
    or `<bench>.<configuration>.json` when the figures name their configuration (the
    sync benches run in both: one file each)."""
    for name, (value, unit) in figures.items():
        print(f"{name}: {value} {unit}".rstrip(), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {name: {"value": value, "unit": unit} for name, (value, unit) in figures.items()}
    configuration = figures.get("configuration", ("", ""))[0]
    stem = f"{bench}.{configuration}" if configuration else bench
    (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":  # `make bench` runs every bench/*.py
    pass
