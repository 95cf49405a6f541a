"""Sync status pages: what is in LaunchDarkly, what is happening, what failed."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from connector.connections.models import LaunchDarklyConnection
from connector.connections.selectors import connection_of_workspace
from connector.connections.services import budget_for
from connector.inputs import PAGE_MAX, whole_number_or_none
from connector.launchdarkly import instances
from connector.sync import selectors, services
from connector.sync.forms import SyncSettingsForm
from connector.sync.models import SyncItem, SyncRun
from connector.sync.selectors import sync_settings
from tenants.http import WorkspaceRequest
from tenants.models import Role
from tenants.views import workspace_view

ITEMS_PER_PAGE = 50
# What a person reads when work is saved but the task queue cannot be reached.
QUEUE_DOWN = (
    "The task queue (Redis) cannot be reached right now, so workers have not picked it up "
    "yet; nothing is lost, and it starts by itself when the queue is back."
)


def _progress_context(run: SyncRun | None, connection: LaunchDarklyConnection | None) -> dict:
    if run is None:
        return {"run": None}
    progress = selectors.run_progress(run=run)
    waiting_until = progress.waiting_until
    if run.finished_at is None and waiting_until is None and connection:
        # Workers sleeping through a window reset show up in the shared budget only.
        limited = budget_for(connection).limited_until()
        waiting_until = datetime.fromtimestamp(limited, tz=UTC) if limited else None
    return {"run": run, "progress": progress, "waiting_until": waiting_until}


def _metric_url_base(connection: LaunchDarklyConnection | None) -> str:
    if connection is None or not connection.project_key:
        return ""
    # LaunchDarkly: a metric's page is <ui>/<projectKey>/metrics/<metricKey>/details (its _site).
    return f"{instances.ui_base_url(connection.instance)}/{connection.project_key}/metrics/"


@workspace_view()
def status(request: WorkspaceRequest) -> HttpResponse:
    run = selectors.current_run()
    connection = connection_of_workspace()
    history = selectors.daily_history()
    peak = max((d.done + d.failed for d in history), default=0) or 1
    return render(
        request,
        "sync/status.html",
        {
            **_progress_context(run, connection),
            "connection": connection,
            "runs": selectors.runs_with_counts(),
            "last_resync": selectors.last_resync(),
            "history": history,
            "peak": peak,
            "can_manage": request.membership.has_role(Role.ADMIN),
        },
    )


@workspace_view()
def run_detail(request: WorkspaceRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(SyncRun.objects.all(), pk=run_id)
    show = request.GET.get("show", "")
    # Not a page number (None) shows the first page.
    number = whole_number_or_none(request.GET.get("page"), minimum=1, maximum=PAGE_MAX)
    page = Paginator(selectors.run_items(run=run, show=show), ITEMS_PER_PAGE).get_page(number)
    connection = connection_of_workspace()
    return render(
        request,
        "sync/run.html",
        {
            **_progress_context(run, connection),
            "page": page,
            "show": show,
            "filters": selectors.ITEM_FILTERS,
            "metric_url_base": _metric_url_base(connection),
            "can_manage": request.membership.has_role(Role.ADMIN),
        },
    )


@workspace_view()
def run_progress(request: WorkspaceRequest, run_id: int) -> HttpResponse:
    """The progress fragment the status pages poll (no full reload)."""
    run = get_object_or_404(SyncRun.objects.all(), pk=run_id)
    return render(request, "sync/_progress.html", _progress_context(run, connection_of_workspace()))


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def run_retry_failed(request: WorkspaceRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(SyncRun.objects.all(), pk=run_id)
    count = services.sync_run_retry_failed(run=run, actor=request.user)
    if count and run.queue_reached is False:
        messages.warning(request, f"{count} item(s) will be retried. {QUEUE_DOWN}")
    elif count:
        messages.success(request, f"Retrying {count} item(s).")
    else:
        messages.info(request, "Nothing to retry: no item of this run has failed.")
    return redirect("sync:run", slug=request.workspace.slug, run_id=run.pk)


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def item_retry(request: WorkspaceRequest, item_id: int) -> HttpResponse:
    item = get_object_or_404(SyncItem.objects.select_related("run", "mapping"), pk=item_id)
    if services.sync_item_retry(item=item, actor=request.user):
        if item.run.queue_reached is False:
            messages.warning(request, f"{item.mapping.metric_key} will be retried. {QUEUE_DOWN}")
        else:
            messages.success(request, f"Retrying {item.mapping.metric_key}.")
    else:
        messages.info(request, "This item has not failed; there is nothing to retry.")
    return redirect("sync:run", slug=request.workspace.slug, run_id=item.run_id)


@workspace_view(minimum_role=Role.ADMIN)
def sync_settings_page(request: WorkspaceRequest) -> HttpResponse:
    form = SyncSettingsForm(request.POST or None, instance=sync_settings())
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Sync settings saved.")
        return redirect("sync:settings", slug=request.workspace.slug)
    return render(request, "sync/settings.html", {"form": form})


def operators_overview(request: HttpRequest) -> HttpResponse:
    """Staff only. Anyone else gets the same 404 as for a page that does not exist."""
    if not (request.user.is_authenticated and request.user.is_staff):
        raise Http404("Not found.")
    return render(request, "sync/ops.html", {"overview": selectors.overview()})
