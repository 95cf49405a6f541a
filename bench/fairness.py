"""Benchmark: a large workspace does not hold up small ones.

One workspace syncs 5,000 metrics and nine others 10 each, each workspace connected
(through the connector's own service) to its own sandbox account, all runs started at
once, on 2 Celery workers (threads pool, 8 threads each), with the sandbox answering
after 150 ms. Prints when each small workspace finished, counted from the start; the
goal is every one within 10 s. The large run is stopped there (its progress is
printed), since only the small ones' finishing times are the figure.
"""

from __future__ import annotations

import os
import time

import _harness as harness

LARGE = int(os.environ.get("BENCH_LARGE_ITEMS", "5000"))
SMALL = 10
SMALL_WORKSPACES = 9
LATENCY_MS = 150


def main() -> None:
    harness.setup("fairness")
    sandbox = harness.Sandbox()
    try:
        runs = []
        for n in range(1 + SMALL_WORKSPACES):
            name = "Large" if n == 0 else f"Small {n}"
            account = sandbox.create_account(name)
            tenant, user = harness.workspace_connected(name, account["token"])
            count = LARGE if n == 0 else SMALL
            runs.append((name, harness.plan_for_events(tenant, user, count)))
        sandbox.set_faults(rate=0, latency_ms=LATENCY_MS)
        finished_at: dict[str, float] = {}
        with harness.workers(2, pool="threads", concurrency=8) as processes:
            time.sleep(3)  # let both workers connect to the broker
            started = time.monotonic()
            for _, run in runs:
                harness.start(run)

            def small_done() -> bool:
                for name, run in runs[1:]:
                    if name not in finished_at and harness.run_finished(run):
                        finished_at[name] = time.monotonic() - started
                return len(finished_at) == SMALL_WORKSPACES

            harness.wait_for(small_done, timeout=120, interval=0.05)
            large_counts = harness.run_counts(runs[0][1])
            elapsed = time.monotonic() - started
            worker_exits = harness.exited(processes)
        figures: dict = {"configuration": (harness.configuration(), "")}
        for name, _ in runs[1:]:
            key = name.lower().replace(" ", "_") + "_finish_s"
            figures[key] = (round(finished_at[name], 2) if name in finished_at else None, "s")
        done = [finished_at.get(name) for name, _ in runs[1:]]
        figures["small_workspaces_finished"] = (sum(t is not None for t in done), "workspaces")
        figures["small_workspaces_max_finish_s"] = (
            round(max(done), 2) if all(t is not None for t in done) else None,
            "s",
        )
        small_counts: dict[str, int] = {}
        for _, run in runs[1:]:
            for status, n in harness.run_counts(run).items():
                small_counts[status] = small_counts.get(status, 0) + n
        figures["small_items_by_status"] = (small_counts, "")
        figures["large_items_done_meanwhile"] = (large_counts.get("done", 0), "items")
        figures["large_items_total"] = (LARGE, "items")
        figures["observed_s"] = (round(elapsed, 1), "s")
        figures["worker_exits"] = (worker_exits, "workers")
        harness.report("fairness", figures)
    finally:
        sandbox.close()
        harness.cleanup()


if __name__ == "__main__":
    main()
