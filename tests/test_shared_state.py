"""The shared lock excludes across processes, in whichever configuration runs."""

import multiprocessing
import time

import pytest

from connector.shared_state import LockTimeout, shared_lock


def _critical_section(path, name, rounds):
    import django

    django.setup()
    for _ in range(rounds):
        with shared_lock(name):
            # Read, pause, write: without exclusion, concurrent holders lose updates.
            with open(path) as f:
                value = int(f.read())
            time.sleep(0.002)
            with open(path, "w") as f:
                f.write(str(value + 1))


def test_shared_lock__four_processes__no_lost_update(tmp_path):
    counter = tmp_path / "counter"
    counter.write_text("0")
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_critical_section, args=(str(counter), f"test-{tmp_path.name}", 25))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert counter.read_text() == "100"


def test_shared_lock__held__second_taker_times_out(tmp_path):
    name = f"held-{tmp_path.name}"
    with shared_lock(name), pytest.raises(LockTimeout), shared_lock(name, wait=0.2):
        pass
    with shared_lock(name, wait=0.2):
        pass  # free again once released
