"""The overview's last step: the metrics are in LaunchDarkly."""

from django.dispatch import receiver
from django.urls import reverse

from connector.metrics.models import MappingStatus, MetricMapping
from connector.sync.models import SyncRun
from tenants.overview import Step, workspace_steps


@receiver(workspace_steps, dispatch_uid="sync.steps")
def sync_steps(*, membership, **_) -> list[Step]:
    in_launchdarkly = MetricMapping.objects.filter(status=MappingStatus.SYNCED).count()
    running = SyncRun.objects.filter(finished_at=None).exists()
    if running:
        state = f"Workers are sending metrics now; {in_launchdarkly} in LaunchDarkly so far."
    elif in_launchdarkly:
        state = f"{in_launchdarkly} metric{'s' if in_launchdarkly != 1 else ''} in LaunchDarkly"
    else:
        state = "No metric in LaunchDarkly yet."
    return [
        Step(
            order=60,
            title="Metrics in LaunchDarkly",
            done=in_launchdarkly > 0 and not running,
            state=state,
            url=reverse("sync:status", args=[membership.tenant.slug]),
            action="Watch the sync",
            admin_only=False,
        )
    ]
