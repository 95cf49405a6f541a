"""State that every process of the connector shares, correct in both configurations:
Redis when REDIS_URL is set (many hosts), otherwise files on this machine (the
embedded default, where web, worker and beat share one disk).

Locks are what two workers must never both hold: spending one refresh token,
updating one account's rate-limit budget.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path

import redis
from django.conf import settings


class LockTimeout(TimeoutError):
    """The lock stayed taken for longer than the caller was willing to wait."""


@cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5, health_check_interval=25
    )


@contextmanager
def shared_lock(name: str, *, timeout: float = 30, wait: float = 30) -> Iterator[None]:
    """Hold the lock `name` across every process. `timeout` bounds how long a crashed
    holder can keep it (Redis only: a file lock dies with its process); `wait` bounds
    how long to wait for it."""
    if settings.REDIS_URL:
        lock = redis_client().lock(f"lock:{name}", timeout=timeout, blocking_timeout=wait)
        if not lock.acquire():
            raise LockTimeout(name)
        try:
            yield
        finally:
            # Held past its timeout and taken over: nothing left to release.
            with suppress(redis.exceptions.LockNotOwnedError):
                lock.release()
        return

    folder = settings.VAR_DIR / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / hashlib.sha256(name.encode()).hexdigest()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(name) from None
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def update_json(name: str, change, *, ttl_s: int = 3600):
    """Read the JSON value `name`, let `change(value) -> (result, new_value)` decide,
    write the new value, and return the result: one atomic step across processes."""
    with shared_lock(f"json:{name}", timeout=10, wait=10):
        if settings.REDIS_URL:
            raw = redis_client().get(f"json:{name}")
        else:
            path = _json_path(name)
            raw = path.read_bytes() if path.exists() else None
        result, value = change(json.loads(raw) if raw else None)
        encoded = json.dumps(value).encode()
        if settings.REDIS_URL:
            redis_client().set(f"json:{name}", encoded, ex=ttl_s)
        else:
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(encoded)
            tmp.replace(path)  # atomic: a reader never sees half a file
        return result


def _json_path(name: str) -> Path:
    folder = settings.VAR_DIR / "state"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (hashlib.sha256(name.encode()).hexdigest() + ".json")
