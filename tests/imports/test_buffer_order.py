"""The buffer under concurrent writers: ids are taken when rows are inserted, but
transactions commit in any order, so a batch cut must never pass an id that is still
to commit; and an occurrence committed while a drain runs wakes another drain."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.cache import cache
from django.db import connection, connections, transaction

from connector.imports import delivery
from connector.imports.ingest import occurrences_ingest
from connector.imports.models import Occurrence
from tenants.scope import tenant_scope
from tests.imports.conftest import occurrence
from tests.imports.test_track import drain_all


def _in_thread(target) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connections.close_all()  # this thread's own connection

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _waiting_for_advisory_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_cut_waits_for_an_earlier_id_still_to_commit__every_occurrence_delivered(
    importing, workspace
):
    """Contract EVT-1: a request that took lower ids commits after one that took higher
    ids; the batch cut in between waits for it rather than passing its ids by, and
    LaunchDarkly receives both."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's writers take turns: ids always commit in order there")
    inserted, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with tenant_scope(workspace), transaction.atomic():
            occurrences_ingest(items=[occurrence("signup", f"early-{i}") for i in range(10)])
            inserted.set()
            release.wait(30)

    writer = _in_thread(slow_writer)
    assert inserted.wait(30)
    # Another event: the two requests share no count row, so neither waits for the other.
    answer = importing.track([occurrence("checkout", f"late-{i}") for i in range(10)])
    assert answer.json()["counts"]["accepted"] == 10
    with tenant_scope(workspace):
        assert Occurrence.objects.count() == 10  # the later ones; the first are uncommitted

    cut: list = []

    def cutter() -> None:
        with tenant_scope(workspace):
            cut.append(delivery.batch_cut("production", "default"))

    cutting = _in_thread(cutter)
    # Until the cut has either finished or is waiting for the first writer.
    for _ in range(500):
        if cut or _waiting_for_advisory_lock():
            break
        time.sleep(0.01)
    release.set()
    writer.join(30)
    cutting.join(30)

    (batch,) = cut
    assert batch.count == 20
    drain_all(workspace)
    assert importing.imported() == {"signup": 10, "checkout": 10}


@pytest.mark.django_db(transaction=True)  # the wake runs on commit
def test_a_drain_clears_the_wake__an_occurrence_after_it_wakes_another(importing, workspace):
    """Contract EVT-1: wakes within a second are merged, but not into a drain that has
    already looked: an occurrence committed after a drain started must wake a new one,
    not wait for the sweeper."""
    mark = f"imports:wake:{workspace.pk}:production"
    importing.track([occurrence("signup", "u-1")])
    assert cache.get(mark) is not None

    drain_all(workspace)

    assert cache.get(mark) is None  # the next commit's wake is sent, not merged
    importing.track([occurrence("signup", "u-2")])
    assert cache.get(mark) is not None
    drain_all(workspace)
    assert importing.imported() == {"signup": 2}
