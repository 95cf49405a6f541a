"""Event import pages: where occurrences go (settings), and what became of them."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from connector.connections.selectors import connection_of_workspace
from connector.imports import selectors
from connector.imports.delivery import batch_replay, wake_delivery
from connector.imports.forms import ImportSettingsForm
from connector.imports.ingest import import_settings
from connector.imports.models import BatchStatus, ImportBatch
from tenants.http import WorkspaceRequest
from tenants.models import Role
from tenants.views import workspace_view


@workspace_view()
def status(request: WorkspaceRequest) -> HttpResponse:
    connection = connection_of_workspace()
    return render(
        request,
        "imports/status.html",
        {
            "connection": connection,
            "import_settings": import_settings(),
            "figures": selectors.import_figures(),
            "dead_batches": selectors.dead_batches(),
            "stopped": selectors.stopped_events(),
            "can_manage": request.membership.has_role(Role.ADMIN),
        },
    )


@workspace_view(minimum_role=Role.ADMIN)
def settings_page(request: WorkspaceRequest) -> HttpResponse:
    connection = connection_of_workspace()
    row = import_settings()
    environments, kinds, note = selectors.project_choices(connection)
    form = ImportSettingsForm(
        request.POST if request.method == "POST" else None,
        instance=row,
        environments=environments,
        kinds=kinds,
    )
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Event import settings saved.")
        return redirect("imports:settings", slug=request.workspace.slug)
    return render(
        request,
        "imports/settings.html",
        {"form": form, "connection": connection, "note": note},
        status=400 if form.errors else 200,
    )


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def replay(request: WorkspaceRequest, batch_id: int) -> HttpResponse:
    batch = get_object_or_404(ImportBatch.objects, pk=batch_id)
    if batch.status != BatchStatus.DEAD:
        messages.info(request, f"Batch {batch.pk} is not a dead letter; nothing to replay.")
    elif batch_replay(batch=batch):
        wake_delivery(request.workspace.pk, [batch.environment_key])
        messages.success(
            request,
            f"Batch {batch.pk} ({batch.count} occurrences) is queued again, with the same "
            "payload id: LaunchDarkly counts it once however often it arrives.",
        )
    return redirect("imports:status", slug=request.workspace.slug)
