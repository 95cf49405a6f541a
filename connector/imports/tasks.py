"""Thin tasks for event import: scope from the first argument, one service call."""

from celery import shared_task

from connector.imports import delivery, ingest
from tenants.models import Tenant
from tenants.scope import runs_in_workspace, tenant_scope


@shared_task(name="imports.drain", soft_time_limit=120, time_limit=150)
@runs_in_workspace
def imports_drain(tenant_id: int, environment: str) -> None:
    report = delivery.drain(environment)
    if report.more:
        imports_drain.apply_async((tenant_id, environment), countdown=0.5)
    elif report.wait_until is not None:
        import time

        countdown = min(max(report.wait_until - time.time(), 0.1), 30 * 60)
        imports_drain.apply_async((tenant_id, environment), countdown=countdown)


@shared_task(name="imports.sweep", soft_time_limit=60, time_limit=90)
def imports_sweep() -> None:
    """Start a drain wherever work waits (a wake lost with the queue down, a retry
    due), and trim what every environment has."""
    for tenant_id, environment in delivery.delivery_due():
        imports_drain.delay(tenant_id, environment)
    for tenant in Tenant.objects.all():
        with tenant_scope(tenant):
            delivery.buffer_trim()


@shared_task(name="imports.volumes", soft_time_limit=300, time_limit=360)
def imports_volumes() -> None:
    for tenant in Tenant.objects.all():
        with tenant_scope(tenant):
            ingest.volumes_refresh()
