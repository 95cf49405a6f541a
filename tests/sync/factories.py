"""Sync rows for tests that need them without sending anything."""

from connector.metrics.models import MetricKind, MetricMapping
from connector.sources.models import SourceEvent
from connector.sync.models import Action, ItemStatus, SyncItem, SyncRun, Trigger
from tenants.scope import tenant_scope


def make_run(tenant, *, items=1, status=ItemStatus.DONE, prefix="evt"):
    """A run with `items` items in `status`, each with its own event and mapping."""
    with tenant_scope(tenant):
        start = SourceEvent.objects.count()
        events = SourceEvent.objects.bulk_create(
            SourceEvent(tenant=tenant, key=f"{prefix}_{start + i}") for i in range(items)
        )
        mappings = MetricMapping.objects.bulk_create(
            MetricMapping(
                tenant=tenant,
                source_event=e,
                kind=MetricKind.BINARY,
                project_key="default",
                metric_key=f"{e.key}-binary",
                name=e.key,
                desired_hash="x",
            )
            for e in events
        )
        run = SyncRun.objects.create(tenant=tenant, trigger=Trigger.PLAN, total=items)
        SyncItem.objects.bulk_create(
            (
                SyncItem(tenant=tenant, run=run, mapping=m, action=Action.CREATE, status=status)
                for m in mappings
            ),
            batch_size=1000,
        )
    return run


def make_item(tenant, status=ItemStatus.FAILED):
    run = make_run(tenant, items=1, status=status, prefix=f"item{tenant.pk}")
    with tenant_scope(tenant):
        return SyncItem.objects.get(run=run)
