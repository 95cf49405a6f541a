"""Event import pages: where occurrences go (settings), and what became of them."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from connector.connections.selectors import connection_of_workspace
from connector.imports import selectors
from connector.imports.delivery import batch_replay, wake_delivery
from connector.imports.forms import ImportSettingsForm, ValuePropertiesForm
from connector.imports.ingest import import_settings
from connector.imports.models import BatchStatus, ImportBatch
from connector.sources.services import value_properties_set
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
    events, numeric_count = selectors.numeric_events()
    posted = request.POST if request.method == "POST" else None
    # Two forms on the page, each with its own Save: the button says which was sent.
    saving_values = posted is not None and "save_values" in posted
    form = ImportSettingsForm(
        None if saving_values else posted,
        instance=row,
        environments=environments,
        kinds=kinds,
    )
    values_form = ValuePropertiesForm(posted if saving_values else None, events=events)
    if saving_values and values_form.is_valid():
        changed = value_properties_set(
            actor=request.user, values=values_form.values(), via="event import settings"
        )
        saved = f"{len(changed)} changed" if changed else "none changed"
        messages.success(request, f"Value properties saved ({saved}).")
        return redirect("imports:settings", slug=request.workspace.slug)
    if posted is not None and not saving_values and form.is_valid():
        form.save()
        messages.success(request, "Event import settings saved.")
        return redirect("imports:settings", slug=request.workspace.slug)
    return render(
        request,
        "imports/settings.html",
        {
            "form": form,
            "values_form": values_form,
            "numeric_count": numeric_count,
            "connection": connection,
            "note": note,
        },
        status=400 if form.errors or values_form.errors else 200,
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
