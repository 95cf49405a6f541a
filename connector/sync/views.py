"""Sync status pages: what is in LaunchDarkly, what is happening, what failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

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
from connector.sync.models import Action, SyncItem, SyncRun
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


# Items whose metric is in LaunchDarkly once done (archived ones too): only those link
# to its page.
LINKED_ACTIONS = (Action.CREATE, Action.UPDATE, Action.ADOPT, Action.RESTORE, Action.ARCHIVE)


def _metric_url_base(run: SyncRun, connection: LaunchDarklyConnection | None) -> str:
    """Where the run's metrics live: the instance and project it was planned for (the
    connection may point elsewhere since), else the connection's."""
    instance = run.instance or (connection.instance if connection else "")
    project_key = run.project_key or (connection.project_key if connection else "")
    if not (instance and project_key):
        return ""
    # LaunchDarkly: a metric's page is <ui>/<projectKey>/metrics/<metricKey>/details (its _site).
    return f"{instances.ui_base_url(instance)}/{project_key}/metrics/"


# --- the status page's chart: an SVG drawn here, coloured by the stylesheet ----------


@dataclass(frozen=True)
class Bar:
    day: date
    done: int
    failed: int
    x: float
    width: float
    done_y: float
    done_h: float
    failed_y: float
    failed_h: float


@dataclass(frozen=True)
class Tick:
    label: str
    x: float
    y: float


@dataclass(frozen=True)
class Chart:
    """Stacked bars per day in a 720 by 200 viewBox that CSS scales to the card."""

    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    synced: int
    failed: int
    first: date | None
    last: date | None
    width: int = 720
    height: int = 200
    left: int = 40
    right: int = 712
    top: int = 12
    bottom: int = 176
    y_label_x: int = 34  # y labels end just left of the axis
    x_label_y: int = 194  # x labels sit under the axis
    tick_end: int = 181


def _nice_step(peak: int) -> int:
    """A round step (1, 2 or 5 times a power of ten) such that two steps reach the tallest bar."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if 2 * factor * magnitude >= peak:
                return factor * magnitude
        magnitude *= 10


def _history_chart(history: list[selectors.Day]) -> Chart:
    chart = Chart(bars=[], y_ticks=[], x_ticks=[], synced=0, failed=0, first=None, last=None)
    plot_h = chart.bottom - chart.top
    slot = (chart.right - chart.left) / max(len(history), 1)
    step = _nice_step(max((d.done + d.failed for d in history), default=0))
    top_value = 2 * step

    def y_of(value: float) -> float:
        return round(chart.bottom - plot_h * value / top_value, 1)

    bars = []
    for i, d in enumerate(history):
        done_y, failed_y = y_of(d.done), y_of(d.done + d.failed)
        bars.append(
            Bar(
                day=d.day,
                done=d.done,
                failed=d.failed,
                x=round(chart.left + slot * i + slot * 0.15, 1),
                width=round(slot * 0.7, 1),
                done_y=done_y,
                done_h=round(chart.bottom - done_y, 1),
                failed_y=failed_y,
                failed_h=round(done_y - failed_y, 1),
            )
        )
    y_ticks = [Tick(label=str(v), x=chart.left, y=y_of(v)) for v in (0, step, top_value)]
    shown = sorted({0, len(history) // 2, len(history) - 1}) if history else []
    x_ticks = [
        Tick(
            label=f"{history[i].day:%b} {history[i].day.day}",
            x=round(chart.left + slot * (i + 0.5), 1),
            y=chart.bottom,
        )
        for i in shown
    ]
    return Chart(
        bars=bars,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        synced=sum(d.done for d in history),
        failed=sum(d.failed for d in history),
        first=history[0].day if history else None,
        last=history[-1].day if history else None,
    )


def _groups_context() -> dict:
    groups, count = selectors.metric_groups()
    return {"groups": groups, "groups_count": count, "groups_hidden": count - len(groups)}


@workspace_view()
def status(request: WorkspaceRequest) -> HttpResponse:
    run = selectors.current_run()
    connection = connection_of_workspace()
    history = selectors.daily_history()
    return render(
        request,
        "sync/status.html",
        {
            **_progress_context(run, connection),
            "connection": connection,
            "runs": selectors.runs_with_counts(),
            "last_resync": selectors.last_resync(),
            **_groups_context(),
            "history": history,
            "chart": _history_chart(history),
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
            "metric_url_base": _metric_url_base(run, connection),
            "linked_actions": LINKED_ACTIONS,
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
    item = get_object_or_404(SyncItem.objects.select_related("run", "mapping", "group"), pk=item_id)
    if services.sync_item_retry(item=item, actor=request.user):
        if item.run.queue_reached is False:
            messages.warning(request, f"{item.target_key} will be retried. {QUEUE_DOWN}")
        else:
            messages.success(request, f"Retrying {item.target_key}.")
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
