"""The overview's catalog step: the source product's events are here."""

from django.dispatch import receiver
from django.urls import reverse

from connector.sources.models import SourceEvent
from tenants.overview import Step, workspace_steps


@receiver(workspace_steps, dispatch_uid="sources.steps")
def catalog_steps(*, membership, **_) -> list[Step]:
    count = SourceEvent.objects.filter(removed_at=None).count()
    slug = membership.tenant.slug
    return [
        Step(
            order=30,
            title="Bring your events",
            done=count > 0,
            state=f"{count} event{'s' if count != 1 else ''} in the catalog"
            if count
            else "The catalog is empty: send it through the API or upload a file.",
            url=reverse("sources:upload", args=[slug]),
            action="Upload a catalog file",
        )
    ]
