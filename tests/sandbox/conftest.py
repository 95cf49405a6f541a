"""Sandbox fixtures: a fresh sandbox per test, and every /api/v2 answer checked
against LaunchDarkly's OpenAPI document as it is sent."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from sandbox.messages import Request, Response
from sandbox.openapi import check_response
from sandbox.testing import RunningSandbox


class SpecCollector:
    """Validates each /api/v2 response body the sandbox sends; counts and keeps violations."""

    def __init__(self) -> None:
        self.validated: Counter[str] = Counter()  # "operationId status" -> count
        self.violations: list[str] = []
        self._lock = threading.Lock()

    def observe(self, request: Request, response: Response) -> None:
        if not request.path.startswith("/api/v2/"):
            return
        if response.status >= 500:  # injected faults; the spec documents no 5xx bodies
            return
        if response.status != 204 and response.json_body is None:
            with self._lock:
                self.violations.append(f"{request.method} {request.path}: non-JSON body")
            return
        check = check_response(request.method, request.path, response.status, response.json_body)
        with self._lock:
            if check.errors:
                self.violations.extend(
                    f"{request.method} {request.path} {response.status}: {error}"
                    for error in check.errors
                )
            if check.operation is not None:
                self.validated[f"{check.operation.operation_id} {response.status}"] += 1


@pytest.fixture(scope="session")
def spec_collector() -> SpecCollector:
    return SpecCollector()


@pytest.fixture
def sandbox(spec_collector: SpecCollector) -> Iterator[RunningSandbox]:
    before = len(spec_collector.violations)
    with RunningSandbox(observer=spec_collector.observe) as running:
        yield running
    assert spec_collector.violations[before:] == []


@pytest.fixture
def make_sandbox(spec_collector: SpecCollector) -> Iterator:
    """For tests that need start-up options (short TTLs, a short rate window)."""
    started: list[RunningSandbox] = []

    def make(**options) -> RunningSandbox:
        running = RunningSandbox(observer=spec_collector.observe, **options).__enter__()
        started.append(running)
        return running

    before = len(spec_collector.violations)
    yield make
    for running in started:
        running.close()
    assert spec_collector.violations[before:] == []


@pytest.fixture
def writer_token(sandbox: RunningSandbox) -> str:
    return sandbox.mint_token("writer")
