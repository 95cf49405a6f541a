"""Benchmark: metric reads per second from the LaunchDarkly sandbox.

Starts `manage.py ldsandbox` on a free port as its own process (as `make run` does),
creates one metric, then reads it from several client threads, each with its own
keep-alive session, for a few seconds. Prints one line per figure and writes the
same figures to bench/results/sandbox.json.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "sandbox.json"
CLIENT_THREADS = 8
DURATION_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(base_url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"sandbox exited early with status {process.returncode}")
        try:
            requests.get(f"{base_url}/_sandbox/state", timeout=1).raise_for_status()
            return
        except requests.RequestException:
            time.sleep(0.1)
    sys.exit("sandbox did not start within 30 s")


def read_metrics(
    url: str, token: str, stop_at: float, counts: list[int], errors: list[int]
) -> None:
    with requests.Session() as session:
        session.headers.update({"Authorization": token, "LD-API-Version": "20240415"})
        done = failed = 0
        while time.monotonic() < stop_at:
            if session.get(url, timeout=10).status_code == 200:
                done += 1
            else:
                failed += 1
    counts.append(done)
    errors.append(failed)


def main() -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "ldsandbox", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until_up(base_url, process)
        token = requests.post(f"{base_url}/_sandbox/tokens", json={"role": "writer"}, timeout=5)
        token = token.json()["token"]
        metric = {"key": "bench-metric", "kind": "custom", "isNumeric": False, "eventKey": "bench"}
        requests.post(
            f"{base_url}/api/v2/metrics/default",
            json=metric,
            headers={"Authorization": token},
            timeout=5,
        ).raise_for_status()
        url = f"{base_url}/api/v2/metrics/default/bench-metric"
        counts: list[int] = []
        errors: list[int] = []
        started = time.monotonic()
        stop_at = started + DURATION_S
        threads = [
            threading.Thread(target=read_metrics, args=(url, token, stop_at, counts, errors))
            for _ in range(CLIENT_THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        process.terminate()
        process.wait(timeout=10)
    figures = {
        "metric_reads_per_s": {"value": round(sum(counts) / elapsed, 1), "unit": "req/s"},
        "metric_read_errors": {"value": sum(errors), "unit": "requests"},
    }
    for name, figure in figures.items():
        print(f"{name}: {figure['value']} {figure['unit']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
