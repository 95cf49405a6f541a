"""The sync engine: runs of items, each item brought to LaunchDarkly by a task.

Flow: `sync_run_start` (after commit) → `pump` queues at most
SYNC_WINDOW_PER_WORKSPACE items of the workspace → each `sync.item` task claims its
item atomically, reconciles it through the shared rate-limit budget, records the
outcome and pumps again. Bounding each workspace's queued items keeps one large
workspace from delaying the others; the atomic claim makes duplicate deliveries
harmless; the sweeper frees claims of workers that died.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError, transaction
from django.db.models import F, Min, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from connector.connections.gate import (
    ConnectionUnusable,
    Gate,
    MustWait,
    OutOfTime,
    TargetGone,
    target_of,
)
from connector.connections.models import LaunchDarklyConnection
from connector.connections.selectors import connection_of_workspace
from connector.launchdarkly import errors
from connector.metrics.models import MappingStatus, MetricGroup, MetricMapping
from connector.metrics.services import (
    group_record,
    groups_forget_remote,
    mapping_record,
    mappings_forget_remote,
)
from connector.observability.context import bind_log_context
from connector.observability.prometheus import sync_item_settled
from connector.shared_state import LockTimeout
from connector.sync.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    READY_STATUSES,
    ItemStatus,
    RemoteMetric,
    SyncItem,
    SyncRun,
)
from connector.sync.reconcile import Outcome, reconcile
from connector.sync.reconcile_groups import members_not_ready, reconcile_group, sends_members
from tenants.models import AuditAction, User
from tenants.scope import current_tenant
from tenants.services import audit_record

log = logging.getLogger(__name__)


# --- starting and steering runs -----------------------------------------------------


def sync_run_start(*, run: SyncRun) -> None:
    """Begin sending the run's items, once the transaction that created them commits.

    With the task queue down the run is kept as it is, pending: `run.queue_reached`
    then says False, for the page to tell the person, and the sweeper (beat) starts it
    once the queue is back."""
    tenant_id = run.tenant_id

    def start() -> None:
        run.queue_reached = _enqueue_pump(tenant_id)

    transaction.on_commit(start)


def _enqueue_pump(tenant_id: int, *, countdown: float = 0) -> bool:
    """Queue a pump for the workspace; False when the task queue cannot be reached."""
    from connector.sync.tasks import sync_pump

    countdown = min(countdown, settings.CELERY_MAX_COUNTDOWN_S)
    try:
        sync_pump.apply_async((tenant_id,), countdown=countdown)
    except (KombuOperationalError, RedisError, OSError) as exc:
        # Committed work is not lost: the sweeper pumps every workspace with ready items.
        log.warning(
            "task queue unreachable; workspace %s waits for the sweeper: %s",
            tenant_id,
            exc,
        )
        return False
    return True


def _enqueue_items(tenant_id: int, item_ids: list[int]) -> None:
    from connector.sync.tasks import sync_item

    for item_id in item_ids:
        sync_item.delay(tenant_id, item_id)


def pump() -> list[int]:
    """Queue the workspace's next ready items, up to its window. Returns their ids."""
    tenant = current_tenant()
    connection = connection_of_workspace()
    if connection is None or not connection.is_usable:
        SyncItem.objects.filter(status__in=READY_STATUSES).update(status=ItemStatus.PAUSED)
        return []
    now = timezone.now()
    ready: list[int] = []
    # Most pumps find the window full: find that out with a read, before taking the
    # write lock that queueing needs (SQLite takes it for every transaction).
    if SyncItem.objects.filter(status__in=ACTIVE_STATUSES).count() < (
        settings.SYNC_WINDOW_PER_WORKSPACE
    ):
        with transaction.atomic():
            # One pump at a time per workspace, so the window is never over-filled.
            list(LaunchDarklyConnection.objects.select_for_update().filter(pk=connection.pk))
            active = SyncItem.objects.filter(status__in=ACTIVE_STATUSES).count()
            free = settings.SYNC_WINDOW_PER_WORKSPACE - active
            if free > 0:
                ready = list(
                    SyncItem.objects.filter(status__in=READY_STATUSES)
                    .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                    .order_by("id")
                    .values_list("pk", flat=True)[:free]
                )
                SyncItem.objects.filter(pk__in=ready).update(
                    status=ItemStatus.QUEUED, claimed_at=now
                )
                transaction.on_commit(lambda: _enqueue_items(tenant.pk, ready))
    _wake_for_waiting_items(tenant.pk, now)
    return ready


def _wake_for_waiting_items(tenant_id: int, now: datetime) -> None:
    """Schedule one pump for when the earliest waiting item is due (once, not per item)."""
    earliest = SyncItem.objects.filter(
        status__in=(ItemStatus.RETRYING, ItemStatus.WAITING), next_attempt_at__gt=now
    ).aggregate(at=Min("next_attempt_at"))["at"]
    if earliest is None:
        return
    marker = f"sync-wake:{tenant_id}"
    scheduled = cache.get(marker)
    if scheduled is not None and now.timestamp() < scheduled <= earliest.timestamp():
        return
    cache.set(marker, earliest.timestamp(), timeout=int((earliest - now).total_seconds()) + 60)
    _enqueue_pump(tenant_id, countdown=max((earliest - now).total_seconds(), 0))


def sync_resume() -> int:
    """After a reconnect: paused items go back in line."""
    resumed = SyncItem.objects.filter(status=ItemStatus.PAUSED).update(
        status=ItemStatus.PENDING, next_attempt_at=None
    )
    tenant_id = current_tenant().pk
    transaction.on_commit(lambda: _enqueue_pump(tenant_id))
    return resumed


def sync_target_changed(*, reason: str) -> int:
    """The connection now points at another LaunchDarkly account, instance or project:
    nothing planned for the old one may go to the new one. Unfinished items are
    cancelled with `reason`, and what the mappings knew of LaunchDarkly (managed,
    applied, version) and the snapshot of its metrics are forgotten, since they describe
    the old place: a new plan creates the metrics where the connection points now.
    Returns how many items were cancelled."""
    cancelled = sync_cancel_unfinished(reason=reason)
    detail = "Not yet in the LaunchDarkly project the workspace is connected to now."
    mappings_forget_remote(detail=detail)
    groups_forget_remote(detail=detail)
    RemoteMetric.objects.filter().delete()
    return cancelled


UNFINISHED_STATUSES = (*READY_STATUSES, ItemStatus.QUEUED, ItemStatus.PAUSED)


def sync_unfinished_count() -> int:
    """What a disconnect would cancel now (the confirmation page says it)."""
    return SyncItem.objects.filter(status__in=UNFINISHED_STATUSES).count()


def sync_cancel_unfinished(*, reason: str) -> int:
    """Disconnect: nothing queued for this workspace may still call LaunchDarkly."""
    now = timezone.now()
    cancelled = SyncItem.objects.filter(status__in=UNFINISHED_STATUSES).update(
        status=ItemStatus.CANCELLED, error_message=reason, finished_at=now
    )
    for run_id in SyncRun.objects.filter(finished_at=None).values_list("pk", flat=True):
        _finish_run_if_done(run_id)
    return cancelled


@transaction.atomic
def sync_run_retry_failed(*, run: SyncRun, actor: User) -> int:
    count = SyncItem.objects.filter(
        run=run, status__in=(ItemStatus.FAILED, ItemStatus.CONFLICT)
    ).update(status=ItemStatus.PENDING, attempts=0, next_attempt_at=None, finished_at=None)
    if count:
        SyncRun.objects.filter(pk=run.pk).update(finished_at=None)
        audit_record(
            actor=actor,
            action=AuditAction.SYNC_RETRY_FAILED,
            target=f"run {run.pk}",
            details={"items": count},
        )
        sync_run_start(run=run)
    return count


@transaction.atomic
def sync_item_retry(*, item: SyncItem, actor: User) -> bool:
    updated = SyncItem.objects.filter(
        pk=item.pk, status__in=(ItemStatus.FAILED, ItemStatus.CONFLICT)
    ).update(status=ItemStatus.PENDING, attempts=0, next_attempt_at=None, finished_at=None)
    if updated:
        SyncRun.objects.filter(pk=item.run_id).update(finished_at=None)
        audit_record(actor=actor, action=AuditAction.SYNC_RETRY_ITEM, target=item.target_key)
        sync_run_start(run=item.run)
    return bool(updated)


Target = MetricMapping | MetricGroup


def sync_run_create(
    *, work: Iterable[tuple[Target, str]], trigger: str, actor: User | None = None
) -> SyncRun | None:
    """The one way a run begins: one item per (mapping or metric group, action), bound
    to where the workspace's connection points now, sent once the transaction commits.
    Items are sent in the order given (a group waits for its metrics anyway). None when
    there is nothing to do."""
    work = list(work)
    if not work:
        return None
    connection = connection_of_workspace()
    instance, account_id, project_key = target_of(connection) if connection else ("", "", "")
    run = SyncRun.objects.create(
        trigger=trigger,
        started_by=actor,
        total=len(work),
        instance=instance,
        account_id=account_id,
        project_key=project_key,
    )
    SyncItem.objects.bulk_create(
        SyncItem(tenant=run.tenant, run=run, action=action, **_target_fields(target))
        for target, action in work
    )
    sync_run_start(run=run)
    return run


def _target_fields(target: Target) -> dict[str, Any]:
    if isinstance(target, MetricGroup):
        return {"group": target}
    return {"mapping": target}


# --- one item ------------------------------------------------------------------------


def _claim(item_id: int) -> str | None:
    """Take the item for this worker; returns the claim's token. Exactly one of any
    number of concurrent or repeated deliveries wins; a claim left by a dead worker
    can be taken over, and its old token then records nothing."""
    now = timezone.now()
    token = secrets.token_hex(16)
    claimed = SyncItem.objects.filter(pk=item_id, status=ItemStatus.QUEUED).update(
        status=ItemStatus.IN_FLIGHT, claimed_at=now, claim_token=token, attempts=F("attempts") + 1
    )
    if not claimed:
        stale = now - timedelta(seconds=settings.SYNC_STALE_CLAIM_S)
        claimed = SyncItem.objects.filter(
            pk=item_id, status=ItemStatus.IN_FLIGHT, claimed_at__lt=stale
        ).update(claimed_at=now, claim_token=token, attempts=F("attempts") + 1)
    return token if claimed else None


class ClaimLost(Exception):
    """Another worker took the item over: this one must stop and record nothing."""


@dataclass(frozen=True)
class Claim:
    """One worker's hold on one item."""

    item: SyncItem
    token: str

    def owned(self):
        return SyncItem.objects.filter(pk=self.item.pk, claim_token=self.token)

    def keep_alive(self, waiting_until: float | None) -> None:
        """Renew the claim (so the sweeper sees a live worker) and show until when the
        item waits for LaunchDarkly's rate limit; ClaimLost when it was taken over."""
        until = datetime.fromtimestamp(waiting_until, tz=UTC) if waiting_until else None
        if not self.owned().update(claimed_at=timezone.now(), next_attempt_at=until):
            raise ClaimLost(self.item.pk)


def _target_refusal(item: SyncItem, connection: LaunchDarklyConnection) -> str:
    """Why the item may not be sent through the connection as it is now, or ""."""
    run = item.run
    planned = (run.instance, run.account_id, run.project_key)
    target: Target | None = item.group or item.mapping
    project_key = target.project_key if target is not None else ""
    if planned != target_of(connection) or project_key != connection.project_key:
        return (
            "Cancelled: it was planned for another LaunchDarkly account or project than "
            "the one the workspace is connected to now."
        )
    return ""


def item_run(*, item_id: int) -> str | None:
    """Bring one item to LaunchDarkly. Returns its new status, or None when another
    delivery of the same task has it (or had it, or took it over meanwhile)."""
    token = _claim(item_id)
    if token is None:
        return None
    item = SyncItem.objects.select_related("mapping__source_event", "group", "run").get(pk=item_id)
    bind_log_context(run_id=item.run_id)
    claim = Claim(item=item, token=token)
    connection = connection_of_workspace()
    if connection is None or not connection.is_usable:
        return _settle(
            claim, ItemStatus.PAUSED, message="Waiting for LaunchDarkly to be reconnected."
        )
    if refusal := _target_refusal(item, connection):
        return _settle(claim, ItemStatus.CANCELLED, message=refusal)
    group = item.group
    if group is not None and sends_members(item.action):
        # Checked before any call: a group waiting for its metrics spends no budget.
        waiting = _group_waits_for_members(claim, group)
        if waiting is not None:
            return waiting
    # The threads pool cannot enforce Celery's time limits, so the item keeps its own:
    # no call starts after it, and SYNC_STALE_CLAIM_S leaves room for one call more.
    gate = Gate(
        connection=connection,
        keep_alive=claim.keep_alive,
        deadline=time.monotonic() + settings.SYNC_ITEM_TIME_LIMIT_S,
    )
    try:
        if group is not None:
            outcome = reconcile_group(group=group, action=item.action, call=gate.call)
        else:
            assert item.mapping is not None  # the model's check: a metric or a group
            outcome = reconcile(mapping=item.mapping, action=item.action, call=gate.call)
    except ClaimLost:
        log.warning("sync item %s: claim taken over by another worker; stopping", item.pk)
        return None
    except MustWait as wait:
        # Being rate limited is a pause, not a failure: the attempt does not count.
        return _settle(
            claim,
            ItemStatus.WAITING,
            attempts=item.attempts - 1,
            next_attempt_at=datetime.fromtimestamp(wait.until, tz=UTC),
            message="Waiting for LaunchDarkly's rate limit.",
        )
    except TargetGone as exc:
        return _settle(claim, ItemStatus.CANCELLED, message=f"Cancelled: {exc}")
    except ConnectionUnusable as exc:
        return _settle(claim, ItemStatus.PAUSED, attempts=item.attempts - 1, message=str(exc))
    except OutOfTime as exc:
        return _failed_call(claim, errors.Timeout(str(exc)))
    except errors.LaunchDarklyError as exc:
        return _failed_call(claim, exc)
    except SoftTimeLimitExceeded:
        return _failed_call(claim, errors.Timeout("The worker's time limit for the item ran out."))
    except (RedisError, LockTimeout, OperationalError) as exc:
        # Shared state is away for a moment (a Redis restart, a busy lock, SQLite's
        # "database is locked" under many writers): not the item's fault, so try again
        # soon; the attempt does not count.
        log.warning("sync item %s: shared state unavailable (%s); retrying", item.pk, exc)
        return _settle(
            claim,
            ItemStatus.RETRYING,
            attempts=item.attempts - 1,
            next_attempt_at=timezone.now() + timedelta(seconds=_backoff_s(1) + 1),
            message="Waiting for the connector's shared state (Redis) to come back.",
        )
    except Exception:
        # A bug, not LaunchDarkly: fail the item visibly instead of retrying forever.
        log.exception("sync item %s failed unexpectedly", item.pk)
        return _settle(claim, ItemStatus.FAILED, message="Internal error; see the worker's log.")
    return _succeeded(claim, outcome)


# How soon a group whose metrics are on their way looks again (a pump each time).
MEMBERS_WAIT_S = 2


def _group_waits_for_members(claim: Claim, group: MetricGroup) -> str | None:
    """A group is sent only once its metrics are in LaunchDarkly, which refuses a group
    of metrics it does not have: while their items are unfinished it waits (the attempt
    does not count), and it fails, saying which, when nothing will bring them."""
    members = members_not_ready(group)
    if members.stuck:
        message = (
            "Not sent: LaunchDarkly needs every metric of a group first, and "
            f"{'these are' if len(members.stuck) > 1 else 'this one is'} not in LaunchDarkly: "
            f"{', '.join(members.stuck)}. Sync {'them' if len(members.stuck) > 1 else 'it'}, "
            "then retry the group."
        )
        return _settle(
            claim,
            ItemStatus.FAILED,
            message=message,
            record={"status": MappingStatus.FAILED, "status_detail": message},
        )
    if members.waiting:
        return _settle(
            claim,
            ItemStatus.RETRYING,
            attempts=claim.item.attempts - 1,
            next_attempt_at=timezone.now() + timedelta(seconds=MEMBERS_WAIT_S),
            message="Waiting for its metrics to be in LaunchDarkly first: "
            + ", ".join(members.waiting),
        )
    return None


def _backoff_s(attempt: int) -> float:
    # Exponential backoff with full jitter (spreads retries of many items apart).
    ceiling = min(settings.SYNC_BACKOFF_CAP_S, settings.SYNC_BACKOFF_BASE_S * 2 ** (attempt - 1))
    return random.uniform(0, ceiling)


def _failed_call(claim: Claim, exc: errors.LaunchDarklyError) -> str | None:
    item = claim.item
    http_status, code = exc.status, exc.code or type(exc).__name__
    message = exc.message
    if exc.retryable and item.attempts < settings.SYNC_MAX_ATTEMPTS:
        delay = _backoff_s(item.attempts)
        return _settle(
            claim,
            ItemStatus.RETRYING,
            message=f"{message} (retrying in {delay:.0f} s)",
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            http_status=http_status,
            code=code,
        )
    if exc.retryable:
        message = f"Gave up after {item.attempts} attempts: {message}"
    return _settle(
        claim,
        ItemStatus.FAILED,
        message=message,
        record={"status": MappingStatus.FAILED, "status_detail": message},
        http_status=http_status,
        code=code,
    )


def _succeeded(claim: Claim, outcome: Outcome) -> str | None:
    now = timezone.now()
    if not outcome.done:
        return _settle(
            claim,
            ItemStatus.CONFLICT,
            message=outcome.note,
            http_status=409,
            code="conflict",
            record={"status": MappingStatus.CONFLICT, "status_detail": outcome.note},
        )
    record: dict[str, Any]
    if outcome.deleted:
        record = {
            "status": MappingStatus.DELETED,
            "status_detail": outcome.note,
            "applied_hash": "",
            "last_synced_at": now,
        }
    elif outcome.released:
        # Still there, and no longer the connector's: nothing of it is applied any more,
        # so a plan that names it again adopts it back.
        record = {
            "status": MappingStatus.SYNCED,
            "status_detail": outcome.note,
            "managed": False,
            "applied_hash": "",
            "last_synced_at": now,
        }
    elif outcome.archived:
        # Still ours and still there, archived. An orphan's event may return, which
        # restores it; a metric a plan dropped stays archived until planned again.
        record = {
            "status": MappingStatus.ORPHANED if outcome.orphan else MappingStatus.ARCHIVED,
            "status_detail": outcome.note,
            "last_synced_at": now,
        }
    else:
        metric = outcome.metric or {}
        record = {
            "status": MappingStatus.SYNCED,
            "status_detail": "",
            "managed": True,
            "applied_hash": outcome.sent_hash,
            "ld_version": metric.get("_version"),
            "last_synced_at": now,
        }
    return _settle(
        claim,
        ItemStatus.DONE,
        message=outcome.note,
        http_status=outcome.http_status,
        code="",
        record=record,
    )


def _settle(
    claim: Claim,
    status: str,
    *,
    message: str = "",
    attempts: int | None = None,
    next_attempt_at: datetime | None = None,
    http_status: int | None = None,
    code: str = "",
    record: dict | None = None,
) -> str | None:
    """Record the outcome, only if this worker still holds the claim (compare and
    set on its token); None when the claim was taken over and nothing was recorded.
    `record` is what to store on the item's mapping or metric group."""
    finished = status in FINISHED_STATUSES
    fields: dict[str, Any] = {
        "status": status,
        "error_message": message if status != ItemStatus.DONE else "",
        "next_attempt_at": next_attempt_at,
        "finished_at": timezone.now() if finished else None,
        "claimed_at": None,
        "claim_token": "",
    }
    if http_status is not None or status == ItemStatus.DONE:
        # A success records its own status (or none when no call was needed), never
        # leaving the 503 of an earlier failed attempt beside "Done".
        fields["last_http_status"] = http_status
    if code or status == ItemStatus.DONE:
        fields["error_code"] = code
    if status == ItemStatus.DONE:
        fields["error_message"] = ""
        fields["note"] = message[:300]
    if attempts is not None:
        fields["attempts"] = max(attempts, 0)
    with transaction.atomic():
        if not claim.owned().update(**fields):
            log.warning(
                "sync item %s: claim taken over; this worker's outcome (%s) is discarded",
                claim.item.pk,
                status,
            )
            return None
        if record and claim.item.group_id is not None:
            group_record(group_id=claim.item.group_id, **record)
        elif record and claim.item.mapping_id is not None:
            mapping_record(mapping_id=claim.item.mapping_id, **record)
    sync_item_settled(outcome=status)
    if finished:
        _finish_run_if_done(claim.item.run_id)
    return status


def _finish_run_if_done(run_id: int) -> None:
    unfinished = SyncItem.objects.filter(run_id=run_id).exclude(status__in=FINISHED_STATUSES)
    if unfinished.exists():
        return
    finished = SyncRun.objects.filter(pk=run_id, finished_at=None).update(
        finished_at=timezone.now()
    )
    failures = SyncItem.objects.filter(
        run_id=run_id, status__in=(ItemStatus.FAILED, ItemStatus.CONFLICT)
    )
    if finished and failures.exists():
        from connector.sync.notify import notify_run_failures

        notify_run_failures(run_id=run_id)


# --- sweeping and progress --------------------------------------------------------------


def sweep_stale_claims() -> list[int]:
    """Free items claimed by workers that died, in every workspace (a sweeper crosses
    workspaces on purpose). Returns the workspaces that have work to pump."""
    stale = timezone.now() - timedelta(seconds=settings.SYNC_STALE_CLAIM_S)
    SyncItem.objects.unscoped().filter(status__in=ACTIVE_STATUSES, claimed_at__lt=stale).update(
        status=ItemStatus.PENDING, claimed_at=None, claim_token=""
    )
    return list(
        SyncItem.objects.unscoped()
        .filter(status__in=READY_STATUSES)
        .values_list("tenant_id", flat=True)
        .distinct()
    )
