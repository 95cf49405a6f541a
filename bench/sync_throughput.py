"""Benchmark: how close the sync engine gets to LaunchDarkly's rate limit.

Syncs 1,000 metrics against the sandbox (a subprocess) answering every request after
150 ms and allowing R creates per 10 s (LaunchDarkly's fixed windows), with 2 Celery
workers (threads pool, 8 threads each: the items wait on the network, not the CPU).
Figures: the achieved create rate as a share of the limit's ceiling (R / 10 s), failed
items, duplicate metrics, 429 answers (and those beyond one per 10 s window).

Baseline: one process creating the same metrics one after another with LaunchDarkly's
official Python client (`launchdarkly_api`) on a fresh sandbox account, sleeping on 429
as its headers say. It runs on its own account (LaunchDarkly's limits are per
account) in a thread alongside the connector's run, so the benchmark stays under
three minutes; it spends nearly all of its time waiting on the sandbox's 150 ms.

Environment: BENCH_ROUTE_PER_10S (default 170), BENCH_METRICS (default 1000).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import _harness as harness

METRICS = int(os.environ.get("BENCH_METRICS", "1000"))
ROUTE_PER_10S = int(os.environ.get("BENCH_ROUTE_PER_10S", "170"))
LATENCY_MS = 150
CREATE_PATH = "/api/v2/metrics/default"


def baseline(sandbox: harness.Sandbox, bodies: list[dict], out: dict) -> None:
    """Naive: one client, one metric after the other, sleeping on 429."""
    import launchdarkly_api
    from launchdarkly_api.exceptions import ApiException

    account = sandbox.create_account("Baseline")
    config = launchdarkly_api.Configuration(host=sandbox.base_url)
    config.api_key["ApiKey"] = account["token"]
    started = time.monotonic()
    sleeps = 0
    with launchdarkly_api.ApiClient(config) as client:
        metrics = launchdarkly_api.MetricsApi(client)
        for body in bodies:
            while True:
                try:
                    metrics.post_metric("default", launchdarkly_api.MetricPost.from_dict(body))
                    break
                except ApiException as exc:
                    if exc.status != 429:
                        raise
                    headers = exc.headers or {}
                    if headers.get("Retry-After"):
                        wait = float(headers["Retry-After"])
                    else:
                        wait = int(headers.get("X-Ratelimit-Reset", "0")) / 1000 - time.time()
                    sleeps += 1
                    time.sleep(max(wait, 0.05))
    out["baseline_s"] = time.monotonic() - started
    out["baseline_429"] = sleeps
    out["baseline_account"] = account["id"]


def main() -> None:
    harness.setup("sync_throughput")
    sandbox = harness.Sandbox()
    try:
        from connector.metrics.desired import metric_body
        from connector.sync.models import ItemStatus, SyncItem

        account = sandbox.create_account("Connector bench")
        tenant, user = harness.workspace_connected("Throughput", account["token"])
        run = harness.plan_for_events(tenant, user, METRICS)
        items = (
            SyncItem.objects.unscoped()
            .filter(run_id=run.pk)
            .select_related("mapping__source_event")
        )
        bodies = [
            metric_body(i.mapping, event_key=i.mapping.source_event.key)
            | {"key": f"b-{n}", "maintainerId": None}
            for n, i in enumerate(items)
        ]
        sandbox.set_faults(rate=0, latency_ms=LATENCY_MS)
        sandbox.set_limits(route_per_10s=ROUTE_PER_10S, global_per_10s=None)
        log_from = sandbox.requests_since(0)[-1]["seq"]

        with harness.workers(2, pool="threads", concurrency=8) as processes:
            time.sleep(3)  # let both workers connect to the broker
            base: dict = {}
            base_thread = threading.Thread(target=baseline, args=(sandbox, bodies, base))
            started = time.monotonic()
            harness.start(run)
            base_thread.start()
            finished = harness.wait_for(lambda: harness.run_finished(run), timeout=240)
            connector_s = time.monotonic() - started
            worker_exits = harness.exited(processes)
            base_thread.join()
        counts = harness.run_counts(run)
        log = [
            e
            for e in sandbox.requests_since(log_from)
            if e.get("account_id") == account["id"] and e["path"].startswith("/api/")
        ]
        creates = [e for e in log if e["method"] == "POST" and e["path"] == CREATE_PATH]
        created = sum(1 for e in creates if e["status"] == 201)
        all_429, extra_429 = harness.too_many_per_window(log)
        metrics = sandbox.metrics(account["token"])
        kinds = Counter((m["eventKey"], m["isNumeric"], m["unitAggregationType"]) for m in metrics)
        ceiling = ROUTE_PER_10S / 10
        failed = sum(n for status, n in counts.items() if status != ItemStatus.DONE)
        if not finished:
            print(f"run did not finish within 240 s: {counts}")
        harness.report(
            "sync_throughput",
            {
                "configuration": (harness.configuration(), ""),
                "metrics": (METRICS, "metrics"),
                "route_limit": (ROUTE_PER_10S, "requests/10s"),
                "latency": (LATENCY_MS, "ms"),
                "workers": ("2 x threads(8)", ""),
                "worker_exits": (worker_exits, "workers"),
                "connector_s": (round(connector_s, 1), "s"),
                "achieved_rate": (round(created / connector_s, 2), "creates/s"),
                "ceiling_rate": (ceiling, "creates/s"),
                "share_of_ceiling": (round(created / connector_s / ceiling, 3), "of ceiling"),
                "failed_items": (failed, "items"),
                "items_done": (counts.get(ItemStatus.DONE, 0), "items"),
                "metrics_in_sandbox": (len(metrics), "metrics"),
                "duplicate_metrics": (sum(n - 1 for n in kinds.values()), "metrics"),
                "create_requests": (len(creates), "requests"),
                "rate_limited_429": (all_429, "answers"),
                "rate_limited_429_beyond_one_per_window": (extra_429, "answers"),
                "baseline_s": (round(base.get("baseline_s", float("nan")), 1), "s"),
                "baseline_429": (base.get("baseline_429"), "answers"),
                "speedup_vs_baseline": (
                    round(base.get("baseline_s", float("nan")) / connector_s, 2),
                    "x",
                ),
            },
        )
    finally:
        sandbox.close()
        harness.cleanup()


if __name__ == "__main__":
    main()
