"""Email about trouble, once per incident: a connection that needs re-authorisation
(on the transition, not on every failing call), and a run that finished with
failures (once per run). To the people the workspace's setting names, with a link
to the page that fixes it.

Queued after commit and sent by a task (connector/sync/tasks.py) that retries while
the mail server is away. An incident is marked sent only after its message went
out, and the check, the send and the mark run under one shared lock: two workers
finishing at once, or a task delivered twice, still send one message."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from connector.connections.models import LaunchDarklyConnection, Status
from connector.connections.selectors import connection_of_workspace
from connector.mail import send_safe_mail
from connector.shared_state import shared_lock
from connector.sync.models import ItemStatus, NotifyWho, SyncItem, SyncRun, SyncSettings
from tenants.models import Membership, Role
from tenants.scope import current_tenant

log = logging.getLogger(__name__)


def recipients() -> list[str]:
    tenant = current_tenant()
    who = SyncSettings.objects.filter().values_list("notify", flat=True).first()
    who = who or NotifyWho.OWNERS_AND_ADMINS
    roles: tuple[str, ...] = {
        NotifyWho.OWNERS_AND_ADMINS: (Role.OWNER, Role.ADMIN),
        NotifyWho.OWNERS: (Role.OWNER,),
        NotifyWho.NOBODY: (),
    }[NotifyWho(who)]
    return sorted(
        Membership.objects.filter(tenant=tenant, role__in=roles, user__is_active=True).values_list(
            "user__email", flat=True
        )
    )


def _send(subject: str, body: str) -> None:
    """One message to everyone concerned (they are colleagues in one workspace).
    Raises what the mail backend raises, for the task to retry."""
    to = recipients()
    if to:
        send_safe_mail(subject=subject, body=body, to=to)


def _queue_after_commit(task, *args) -> None:
    def queue() -> None:
        try:
            task.delay(*args)
        except (KombuOperationalError, RedisError, OSError) as exc:
            # What caused the email is committed: failing the caller now (a page, an
            # item's task) would not bring the queue back.
            log.warning("task queue unreachable; %s%s not queued: %s", task.name, args, exc)

    transaction.on_commit(queue)


# Held while sending: longer than a send can take (connector.mail's timeout), so no
# other worker takes it over mid-send. Waited for briefly; the task retries after.
LOCK_TIMEOUT_S = 120
LOCK_WAIT_S = 10
# How long a sent reconnect email is remembered: far longer than the task retries.
REAUTH_SENT_TTL_S = 7 * 24 * 3600


# --- a connection that needs re-authorisation ------------------------------------------


def notify_needs_reauth(*, reason: str) -> None:
    """Queue the email about the workspace's connection needing a reconnect. Called on
    the transition only (connection_mark_needs_reauth), so once per incident.

    `reason` is what the caller has just stored as the connection's status_reason; the
    task reads it from there (tasks take ids), so a message sent after retries says
    what the connection says then."""
    from connector.sync.tasks import send_needs_reauth

    connection = connection_of_workspace()
    if connection is None:
        return
    # Names this incident, so a task delivered twice finds its message sent.
    incident = uuid.uuid4().hex
    _queue_after_commit(send_needs_reauth, current_tenant().pk, connection.pk, incident)


def needs_reauth_send(*, connection_id: int, incident: str) -> bool:
    """Send the reconnect email of `incident` unless it was sent. Returns whether it
    sent it; raises (unmarked) when the mail backend does."""
    sent_key = f"notify:needs-reauth:{connection_id}:{incident}"
    with shared_lock(sent_key, timeout=LOCK_TIMEOUT_S, wait=LOCK_WAIT_S):
        if cache.get(sent_key):
            return False
        connection = LaunchDarklyConnection.objects.filter(pk=connection_id).first()
        if connection is None or connection.status != Status.NEEDS_REAUTH:
            return False  # reconnected (or disconnected) meanwhile: the email would be wrong
        tenant = current_tenant()
        link = settings.PUBLIC_URL + reverse("connections:settings", args=[tenant.slug])
        _send(
            f"[{tenant.name}] LaunchDarkly needs you to reconnect",
            f"The connector can no longer call LaunchDarkly for the workspace {tenant.name}: "
            f"{connection.status_reason}\n\nSyncing is paused. Reconnect here and it resumes "
            f"where it stopped:\n{link}\n",
        )
        cache.set(sent_key, True, REAUTH_SENT_TTL_S)
        return True


# --- a run that finished with failures ---------------------------------------------------


def _unreported(run_id: int) -> QuerySet[SyncRun]:
    return SyncRun.objects.filter(pk=run_id, finished_at__isnull=False, failure_notified_at=None)


def notify_run_failures(*, run_id: int) -> bool:
    """Queue the report of a finished run's failures unless it was sent. Returns whether
    it was queued; queuing twice still sends one message (`run_failures_send`)."""
    from connector.sync.tasks import send_run_failures

    if not _unreported(run_id).exists():
        return False
    _queue_after_commit(send_run_failures, current_tenant().pk, run_id)
    return True


def _what_failed(metrics: int, groups: int) -> str:
    """`3 metric(s)`, `1 metric group(s)` or `3 metric(s) and 1 metric group(s)`."""
    parts = [f"{metrics} metric(s)"] if metrics or not groups else []
    if groups:
        parts.append(f"{groups} metric group(s)")
    return " and ".join(parts)


def run_failures_send(*, run_id: int) -> bool:
    """Send the run's failure report unless it was sent, then mark the run. Returns
    whether it sent it; raises (unmarked) when the mail backend does."""
    with shared_lock(f"notify:run-failures:{run_id}", timeout=LOCK_TIMEOUT_S, wait=LOCK_WAIT_S):
        if not _unreported(run_id).exists():
            return False
        counts = SyncItem.objects.filter(
            run_id=run_id, status__in=(ItemStatus.FAILED, ItemStatus.CONFLICT)
        ).aggregate(all=Count("pk"), groups=Count("pk", filter=Q(group__isnull=False)))
        failed, groups = counts["all"], counts["groups"]
        if not failed:
            return False  # retried into success before the report went out
        tenant = current_tenant()
        link = settings.PUBLIC_URL + reverse("sync:run", args=[tenant.slug, run_id])
        _send(
            f"[{tenant.name}] {_what_failed(failed - groups, groups)} could not be synced "
            "to LaunchDarkly",
            f"Run {run_id} of the workspace {tenant.name} finished with {failed} failed or "
            f"conflicting item(s). See what LaunchDarkly said and retry them here:\n{link}\n",
        )
        _unreported(run_id).update(failure_notified_at=timezone.now())
        return True
