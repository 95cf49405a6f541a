"""Benchmark: event import, from `POST /api/v1/track` to LaunchDarkly's 202 (issue 15).

Every process is started here, on a fresh database: the sandbox, the web server
(gunicorn, as the Procfile runs it) and Celery workers (threads pool). One workspace
is connected to the sandbox; its ~20 catalog events get metrics through a real plan
and sync run (the connector's own path: the metrics exist in the sandbox with the
right eventKey and the mappings are applied), `production` receives events, and an
API key is made.

Four client threads (a requests.Session each, bodies pre-built as JSON bytes so the
client costs little) post N occurrences (default 1,000,000; `--count`) in batches of
500. Then the benchmark waits until everything accepted is delivered (or
`--timeout` passes) and prints, health first:

- worker/web/sandbox exits, HTTP errors, refused and not_mapped items, configuration;
- accepted_events_per_s (goal >= 20,000 on PostgreSQL+Redis): accepted occurrences
  over the time from the first post to the last answer;
- ack_p99_ms: the client-measured p99 of the track answers;
- p99_delivery_s: receipt to LaunchDarkly's 202, per occurrence, from the database
  (Occurrence.received_at_ms against the delivered_at of the batch covering it);
- accepted, delivered (the sandbox's deduplicated count; FAIL if it differs);
- worker_peak_rss_mb (goal < 250): the highest tree RSS of any Celery worker;
- direct_events_per_s: the same LaunchDarkly event bodies posted by a tight loop
  straight to the sandbox (batches of the connector's size, gzipped in the loop like
  the connector does), and share_of_direct: the connector's delivery rate (delivered
  over the time from the first post to the last batch's 202) over that.

SQLite + filesystem broker (no DATABASE_URL/REDIS_URL) runs too (one writer at a
time, a file-based queue, no server: it may be slower on another machine); its
figures are reported, the goals are judged on PostgreSQL+Redis only.

Also printed: the CPU each role used while posting (cores; `machine` is the whole
machine, so whatever else runs meanwhile shows there), to see what saturates first.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import _harness as harness

EVENTS = 20
BATCH = 500
CLIENTS = 4
ENVIRONMENT = "production"
GOAL_EVENTS_PER_S = 20_000
GOAL_RSS_MB = 250


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="occurrences to post")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--web-threads", type=int, default=2)
    parser.add_argument("--celery-workers", type=int, default=1)
    parser.add_argument("--celery-threads", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=600, help="s to wait for delivery")
    parser.add_argument("--direct-max", type=int, default=250_000, help="events posted directly")
    return parser.parse_args()


class Web:
    """gunicorn serving connector.wsgi, as in the Procfile."""

    def __init__(self, workers: int, threads: int) -> None:
        import requests

        self.port = harness.free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "connector.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--log-level",
                "warning",
            ],
            cwd=harness.ROOT,
            env={**os.environ, **harness.ENV},
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn exited early with status {self.process.returncode}")
            try:
                requests.get(f"{self.base_url}/api/v1/openapi.json", timeout=2).raise_for_status()
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    sys.exit("gunicorn did not start within 60 s")
                time.sleep(0.2)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def bodies(keys: list[str], numeric: set[str], count: int) -> list[bytes]:
    """The request bodies, built before the clock starts: batches of BATCH, every event
    key in turn, a value for the numeric ones."""
    now_ms = int(time.time() * 1000)
    out: list[bytes] = []
    for start in range(0, count, BATCH):
        items = []
        for n in range(start, min(start + BATCH, count)):
            key = keys[n % len(keys)]
            item: dict[str, Any] = {
                "event": key,
                "timestamp": now_ms - (n % 1000),
                "contexts": {"user_id": f"user-{n % 50_000}"},
            }
            if key in numeric:
                item["value"] = n % 977
            items.append(item)
        out.append(json.dumps({"occurrences": items}, separators=(",", ":")).encode())
    return out


class Clients:
    """CLIENTS threads posting the bodies in turn; what came back, per thread."""

    def __init__(self, url: str, api_key: str, payloads: list[bytes]) -> None:
        self.url, self.api_key, self.payloads = url, api_key, payloads
        self.next = itertools.count()
        self.lock = threading.Lock()
        self.latencies_ms: list[float] = []
        self.counts: dict[str, int] = {"accepted": 0, "refused": 0, "not_mapped": 0, "counted": 0}
        self.http_errors: dict[str, int] = {}
        self.first_refusal: Any = None

    def run(self) -> float:
        threads = [threading.Thread(target=self.client) for _ in range(CLIENTS)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started

    def client(self) -> None:
        import requests

        headers = {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}
        latencies: list[float] = []
        counts: dict[str, int] = dict.fromkeys(self.counts, 0)
        errors: dict[str, int] = {}
        with requests.Session() as http:
            while True:
                with self.lock:
                    n = next(self.next)
                if n >= len(self.payloads):
                    break
                sent = time.perf_counter()
                try:
                    answer = http.post(self.url, data=self.payloads[n], headers=headers, timeout=60)
                except requests.RequestException as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                latencies.append((time.perf_counter() - sent) * 1000)
                if answer.status_code != 200:
                    errors[str(answer.status_code)] = errors.get(str(answer.status_code), 0) + 1
                    continue
                body = answer.json()
                for name, value in body["counts"].items():
                    counts[name] = counts.get(name, 0) + value
                if body["counts"]["refused"] and self.first_refusal is None:
                    self.first_refusal = next(
                        r for r in body["results"] if r["status"] == "refused"
                    )
        with self.lock:
            self.latencies_ms += latencies
            for name, value in counts.items():
                self.counts[name] = self.counts.get(name, 0) + value
            for name, value in errors.items():
                self.http_errors[name] = self.http_errors.get(name, 0) + value


def cpu_s(pids: list[int], *, tree: bool = True) -> float:
    """CPU seconds (user + system) used so far by these processes (and their trees)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    every = {p for root in pids for p in harness.tree_rss_kb(root)} if tree else set(pids)
    for pid in every:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / ticks


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (not idle or waiting on I/O), so far:
    whatever else runs meanwhile shows as busy beyond the roles measured."""
    with open("/proc/stat") as f:
        fields = [int(n) for n in f.readline().split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def named(*names: str) -> list[int]:
    """Processes by executable name (the PostgreSQL and Redis servers: not ours, and
    shared with anything else using them meanwhile)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() in names:
                        out.append(int(entry))
            except OSError:
                continue
    return out


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def delivery_delays() -> tuple[float, int, float | None]:
    """(p99 receipt-to-202 in s, occurrences covered by a delivered batch, the last
    delivered_at as unix s), exact per occurrence, computed in SQL."""
    from django.db import connection

    if connection.vendor == "postgresql":
        delivered_ms = "EXTRACT(EPOCH FROM b.delivered_at) * 1000"
    else:  # SQLite keeps datetimes as text
        delivered_ms = "(julianday(b.delivered_at) - 2440587.5) * 86400000.0"
    joined = (
        "FROM imports_occurrence o JOIN imports_importbatch b "
        "ON o.tenant_id = b.tenant_id AND o.id BETWEEN b.first_id AND b.last_id "
        "WHERE b.environment_key = %s AND b.status = 'delivered'"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), MAX({delivered_ms}) {joined}", [ENVIRONMENT])
        covered, last_ms = cursor.fetchone()
        if not covered:
            return float("nan"), 0, None
        offset = max(0, math.ceil(0.99 * covered) - 1)
        cursor.execute(
            f"SELECT {delivered_ms} - o.received_at_ms AS delay {joined} "
            "ORDER BY delay LIMIT 1 OFFSET %s",
            [ENVIRONMENT, offset],
        )
        (p99_ms,) = cursor.fetchone()
    return float(p99_ms) / 1000, int(covered), float(last_ms) / 1000


def direct_rate(sandbox: harness.Sandbox, token: str, limit: int, batch_events: int) -> float:
    """Events per second a tight loop gets into the sandbox: the connector's stored
    event bodies, batches of the connector's size, gzipped in the loop as the
    connector does, each under a fresh payload id."""
    import requests

    from connector.imports.models import Occurrence

    texts = list(
        Occurrence.objects.unscoped().order_by("id").values_list("body", flat=True)[:limit]
    )
    payloads = [
        b"[" + b",".join(t.encode() for t in texts[i : i + batch_events]) + b"]"
        for i in range(0, len(texts), batch_events)
    ]
    url = f"{sandbox.base_url}/v2/event-data-import/default/{ENVIRONMENT}"
    headers = {
        "Authorization": token,
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "User-Agent": "MetricImport-Bench-int/1",
        "X-LaunchDarkly-Event-Schema": "4",
    }
    with requests.Session() as http:
        started = time.monotonic()
        for payload in payloads:
            answer = http.post(
                url,
                data=gzip.compress(payload, compresslevel=5),
                headers=headers | {"X-LaunchDarkly-Payload-ID": str(uuid.uuid4())},
                timeout=60,
            )
            answer.raise_for_status()
        elapsed = time.monotonic() - started
    return len(texts) / elapsed if elapsed else float("nan")


def imported(sandbox: harness.Sandbox, account_id: str) -> dict[str, Any]:
    report = sandbox.call("GET", "events")
    counts = report["counts"].get(account_id, {}).get("default", {}).get(ENVIRONMENT, {})
    return {"delivered": sum(counts.values()), **report}


def main() -> None:
    args = arguments()
    # DEBUG off in every process: Django would otherwise keep every query in memory;
    # no log line per request.
    harness.setup("event_import", DEBUG="false", LOG_LEVEL="WARNING")
    sandbox = harness.Sandbox()
    web: Web | None = None
    try:
        from django.conf import settings

        from connector.imports.ingest import import_settings
        from connector.metrics.models import MappingStatus, MetricMapping
        from connector.sources.models import SourceEvent, ValueKind
        from connector.sources.services import api_key_create
        from tenants.scope import tenant_scope

        account = sandbox.create_account("Import bench")
        tenant, user = harness.workspace_connected("Import", account["token"])
        run = harness.plan_for_events(tenant, user, EVENTS, prefix="bench_event")
        with tenant_scope(tenant):
            row = import_settings()
            row.environments = [ENVIRONMENT]
            row.identity_map = {"user_id": "user"}
            row.save()
            _, api_key = api_key_create(actor=user, name="bench")
            keys = sorted(SourceEvent.objects.values_list("key", flat=True))
            numeric = set(
                SourceEvent.objects.filter(value_kind=ValueKind.NUMERIC).values_list(
                    "key", flat=True
                )
            )
        payloads = bodies(keys, numeric, args.count)
        samples_stop = threading.Event()

        with harness.workers(
            args.celery_workers, pool="threads", concurrency=args.celery_threads
        ) as processes:
            peaks = [0 for _ in processes]

            def sample() -> None:
                while not samples_stop.is_set():
                    for n, process in enumerate(processes):
                        rss = harness.tree_rss_kb(process.pid)
                        if rss:
                            peaks[n] = max(peaks[n], sum(rss.values()))
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            # The metrics are created by the connector's own sync run, on these workers.
            harness.start(run)
            if not harness.wait_for(lambda: harness.run_finished(run), timeout=120):
                sys.exit(f"the metrics' sync run did not finish: {harness.run_counts(run)}")
            with tenant_scope(tenant):
                applied = (
                    MetricMapping.objects.filter(managed=True, project_key="default")
                    .exclude(applied_hash="")
                    .exclude(status=MappingStatus.DELETED)
                    .count()
                )
            web = Web(args.web_workers, args.web_threads)
            clients = Clients(f"{web.base_url}/api/v1/track", api_key, payloads)
            roles = {
                "web": [web.process.pid],
                "workers": [p.pid for p in processes],
                "sandbox": [sandbox.process.pid],
                "client": [os.getpid()],
                "postgres": named("postgres"),
                "redis": named("redis-server"),
            }

            # This process's children are the other roles: the client is itself alone.
            def cpu() -> dict[str, float]:
                used = {role: cpu_s(pids, tree=role != "client") for role, pids in roles.items()}
                return used | {"machine": machine_busy_s()}

            cpu_before = cpu()
            started_at = time.time()
            posting_s = clients.run()
            cpu_posting = {role: used - cpu_before[role] for role, used in cpu().items()}
            accepted = clients.counts["accepted"]

            def delivered_all() -> bool:
                return imported(sandbox, account["id"])["delivered"] >= accepted

            finished = harness.wait_for(delivered_all, timeout=args.timeout, interval=0.5)
            waited_s = time.time() - started_at - posting_s
            samples_stop.set()
            sampler.join()
            worker_exits = harness.exited(processes)
            web_exit = web.process.poll()
            with tenant_scope(tenant):
                p99_delivery_s, covered, last_delivered = delivery_delays()
        web.close()
        web = None
        report = imported(sandbox, account["id"])
        delivered = report["delivered"]
        sandbox_exit = sandbox.process.poll()
        direct = direct_rate(
            sandbox, account["token"], args.direct_max, settings.IMPORT_BATCH_EVENTS
        )
        delivery_s = (last_delivered - started_at) if last_delivered else float("nan")
        delivery_rate = delivered / delivery_s if delivered and delivery_s > 0 else 0.0
        configuration = harness.configuration()
        rate = accepted / posting_s if posting_s else 0.0
        rss_mb = max(peaks) / 1024 if peaks else 0.0

        if delivered != accepted:
            print(f"FAIL: delivered {delivered} != accepted {accepted}", flush=True)
        if not finished:
            print(f"delivery did not finish within {args.timeout:.0f} s", flush=True)
        if clients.first_refusal is not None:
            print(f"first refusal: {clients.first_refusal}", flush=True)
        if configuration == "postgresql+redis":
            for name, ok in (
                (f"accepted_events_per_s >= {GOAL_EVENTS_PER_S}", rate >= GOAL_EVENTS_PER_S),
                (f"worker_peak_rss_mb < {GOAL_RSS_MB}", rss_mb < GOAL_RSS_MB),
            ):
                print(f"goal {name}: {'met' if ok else 'NOT met'}", flush=True)
        else:
            print(f"{configuration}: figures reported, goals judged on PostgreSQL+Redis only")
        harness.report(
            "event_import",
            {
                "configuration": (configuration, ""),
                "worker_exits": (worker_exits, "workers"),
                "web_exit": (web_exit, "status (None: running)"),
                "sandbox_exit": (sandbox_exit, "status (None: running)"),
                "http_errors": (sum(clients.http_errors.values()), "requests"),
                "http_errors_by_kind": (clients.http_errors, ""),
                "refused": (clients.counts["refused"], "occurrences"),
                "not_mapped": (clients.counts["not_mapped"], "occurrences"),
                "metrics_applied": (applied, "mappings"),
                "delivery_finished": (finished, ""),
                "web": (f"gunicorn {args.web_workers} workers x {args.web_threads} threads", ""),
                "workers": (f"{args.celery_workers} x threads({args.celery_threads})", ""),
                "clients": (f"{CLIENTS} threads, {BATCH} per request", ""),
                "occurrences_posted": (args.count, "occurrences"),
                "posting_s": (round(posting_s, 2), "s"),
                "delivery_wait_after_posting_s": (round(waited_s, 2), "s"),
                "accepted_events_per_s": (round(rate), "events/s"),
                "ack_p50_ms": (round(percentile(clients.latencies_ms, 0.5), 1), "ms"),
                "ack_p99_ms": (round(percentile(clients.latencies_ms, 0.99), 1), "ms"),
                "p99_delivery_s": (round(p99_delivery_s, 2), "s"),
                "accepted": (accepted, "occurrences"),
                "delivered": (delivered, "events"),
                "delivered_batches_cover": (covered, "occurrences"),
                "duplicate_payloads": (report["duplicate_payloads"], "payloads"),
                "dropped": (report["dropped"], ""),
                "worker_peak_rss_mb": (round(rss_mb, 1), "MB"),
                "cpu_while_posting": (
                    {role: round(used / posting_s, 2) for role, used in cpu_posting.items()},
                    f"cores (of {os.cpu_count()})",
                ),
                "delivery_events_per_s": (round(delivery_rate), "events/s"),
                "direct_events_per_s": (round(direct), "events/s"),
                "share_of_direct": (round(delivery_rate / direct, 3) if direct else None, ""),
            },
        )
    finally:
        if web is not None:
            web.close()
        sandbox.close()
        harness.cleanup()


if __name__ == "__main__":
    main()
