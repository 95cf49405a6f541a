"""Benchmark: a worker's resident memory while it syncs 10,000 metrics.

Two Celery workers (threads pool, 8 threads each: one process per worker, so a
worker's RSS is its whole footprint) sync a 10,000-metric run against the sandbox (no
latency, no limits). Each worker's process tree is sampled from /proc every 0.2 s
(RSS summed over the tree, which with the threads pool is one process); the figure is
the highest peak of the two workers. The goal is
under 250 MB. The run is given BENCH_MEMORY_TIMEOUT_S (default 300 s); if it has not
finished by then, the figures say how far it got.

SYNC_WINDOW_PER_WORKSPACE is 16 here (every worker thread busy), so the run
finishes within the time box; the window bounds concurrency, not memory.
"""

from __future__ import annotations

import os
import threading
import time

import _harness as harness

METRICS = int(os.environ.get("BENCH_METRICS", "10000"))
TIMEOUT_S = float(os.environ.get("BENCH_MEMORY_TIMEOUT_S", "300"))
WINDOW = os.environ.get("SYNC_WINDOW_PER_WORKSPACE", "16")


def main() -> None:
    harness.setup("sync_memory", SYNC_WINDOW_PER_WORKSPACE=WINDOW)
    sandbox = harness.Sandbox()
    try:
        account = sandbox.create_account("Memory bench")
        tenant, user = harness.workspace_connected("Memory", account["token"])
        run = harness.plan_for_events(tenant, user, METRICS)
        samples: list[int] = []
        stop = threading.Event()

        with harness.workers(2, pool="threads", concurrency=8) as processes:
            peaks = [0 for _ in processes]

            def sample() -> None:
                while not stop.is_set():
                    for n, process in enumerate(processes):
                        rss = harness.tree_rss_kb(process.pid)
                        if rss:
                            kb = sum(rss.values())
                            samples.append(kb)
                            peaks[n] = max(peaks[n], kb)
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            time.sleep(2)
            idle_kb = max(samples) if samples else 0
            started = time.monotonic()
            harness.start(run)
            finished = harness.wait_for(lambda: harness.run_finished(run), TIMEOUT_S, 1.0)
            elapsed = time.monotonic() - started
            worker_exits = harness.exited(processes)
            stop.set()
            sampler.join()
        counts = harness.run_counts(run)
        harness.report(
            "sync_memory",
            {
                "configuration": (harness.configuration(), ""),
                "metrics": (METRICS, "metrics"),
                "workers": ("2 x threads(8); peak of either, RSS summed over its tree", ""),
                "worker_exits": (worker_exits, "workers"),
                "sync_window_per_workspace": (int(WINDOW), "items"),
                "run_finished": (finished, ""),
                "items_done": (counts.get("done", 0), "items"),
                "items_failed": (counts.get("failed", 0), "items"),
                "sync_s": (round(elapsed, 1), "s"),
                "items_per_s": (round(counts.get("done", 0) / elapsed, 1), "items/s"),
                "worker_idle_rss_mb": (round(idle_kb / 1024, 1), "MB"),
                "worker_peak_rss_mb": (round(max(peaks) / 1024, 1), "MB"),
            },
        )
    finally:
        sandbox.close()
        harness.cleanup()


if __name__ == "__main__":
    main()
