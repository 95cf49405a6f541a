"""Email about trouble, once per incident: a connection that needs re-authorisation
(on the transition, not on every failing call), and a run that finished with
failures (claimed once per run). Sent after commit, to the people the workspace's
setting names, with a link to the page that fixes it."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from connector.sync.models import ItemStatus, NotifyWho, SyncItem, SyncRun, SyncSettings
from tenants.models import Membership, Role
from tenants.scope import current_tenant


def recipients() -> list[str]:
    tenant = current_tenant()
    who = SyncSettings.objects.filter().values_list("notify", flat=True).first()
    who = who or NotifyWho.OWNERS_AND_ADMINS
    roles = {
        NotifyWho.OWNERS_AND_ADMINS: (Role.OWNER, Role.ADMIN),
        NotifyWho.OWNERS: (Role.OWNER,),
        NotifyWho.NOBODY: (),
    }[who]
    return sorted(
        Membership.objects.filter(tenant=tenant, role__in=roles, user__is_active=True).values_list(
            "user__email", flat=True
        )
    )


def _send(subject: str, body: str) -> None:
    """One message to everyone concerned (they are colleagues in one workspace)."""
    to = recipients()
    if to:
        transaction.on_commit(
            lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to, fail_silently=False)
        )


def notify_needs_reauth(*, reason: str) -> None:
    tenant = current_tenant()
    link = settings.PUBLIC_URL + reverse("connections:settings", args=[tenant.slug])
    _send(
        f"[{tenant.name}] LaunchDarkly needs you to reconnect",
        f"The connector can no longer call LaunchDarkly for the workspace {tenant.name}: "
        f"{reason}\n\nSyncing is paused. Reconnect here and it resumes where it stopped:\n"
        f"{link}\n",
    )


def notify_run_failures(*, run_id: int) -> bool:
    """Report a finished run's failures, once. Returns whether this call sent it."""
    claimed = SyncRun.objects.filter(
        pk=run_id, finished_at__isnull=False, failure_notified_at=None
    ).update(failure_notified_at=timezone.now())
    if not claimed:
        return False
    failed = SyncItem.objects.filter(
        run_id=run_id, status__in=(ItemStatus.FAILED, ItemStatus.CONFLICT)
    ).count()
    tenant = current_tenant()
    link = settings.PUBLIC_URL + reverse("sync:run", args=[tenant.slug, run_id])
    _send(
        f"[{tenant.name}] {failed} metric(s) could not be synced to LaunchDarkly",
        f"Run {run_id} of the workspace {tenant.name} finished with {failed} failed or "
        f"conflicting item(s). See what LaunchDarkly said and retry them here:\n{link}\n",
    )
    return True
