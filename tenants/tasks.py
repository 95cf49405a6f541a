"""Periodic upkeep of workspace data."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from tenants import throttle
from tenants.models import Invitation

EXPIRED_INVITATION_RETENTION = timedelta(days=30)


@shared_task(name="tenants.invitations_purge_expired")
def invitations_purge_expired() -> int:
    """Delete invitations that expired long ago, in every workspace (a sweeper, so it
    crosses workspaces on purpose). Running it twice deletes nothing more."""
    cutoff = timezone.now() - EXPIRED_INVITATION_RETENTION
    deleted, _ = (
        Invitation.objects.unscoped().filter(accepted_at=None, expires_at__lt=cutoff).delete()
    )
    return deleted


@shared_task(name="tenants.signin_counters_purge")
def signin_counters_purge() -> int:
    return throttle.forget_closed_windows()
