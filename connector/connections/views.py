"""Connect LaunchDarkly: OAuth (authorization code + PKCE) or a pasted API token.

The OAuth state is single use, kept in the signed-in user's session and bound to the
user, the workspace and the instance; LaunchDarkly allows one redirect URI without a
query string, so the callback learns the workspace from the state alone.
"""

from __future__ import annotations

import time

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from connector.connections import selectors, services
from connector.connections.forms import ApiTokenForm, ImportTokenForm, InstanceForm, ProjectForm
from connector.connections.models import Status
from connector.launchdarkly import errors
from connector.launchdarkly.oauth import new_pkce_pair, new_state
from tenants.http import AuthenticatedRequest, WorkspaceRequest
from tenants.models import Role
from tenants.scope import tenant_scope
from tenants.selectors import membership_for
from tenants.views import workspace_view

OAUTH_SESSION_KEY = "launchdarkly_oauth"
OAUTH_STATE_TTL_S = 10 * 60
OAUTH_PENDING_MAX = 5  # a few tabs at once; older attempts are dropped


def _settings_page(
    request: WorkspaceRequest, *, token_form=None, status: int = 200
) -> HttpResponse:
    connection = selectors.connection_of_workspace()
    # The instance is chosen once, for both ways of connecting (?instance=, a GET form).
    chooser = InstanceForm(request.GET if "instance" in request.GET else None)
    if chooser.is_bound and chooser.is_valid():
        instance = chooser.cleaned_data["instance"]
    elif token_form is not None and token_form.data.get("instance"):
        instance = token_form.data["instance"]
    else:
        instance = connection.instance if connection else "commercial"
    chooser = InstanceForm(initial={"instance": instance})
    return render(
        request,
        "connections/settings.html",
        {
            "connection": connection,
            "instance_form": chooser,
            "instance": instance,
            "token_form": token_form or ApiTokenForm(initial={"instance": instance}),
            "import_token_form": ImportTokenForm(),
            "redirect_uri": services.oauth_redirect_uri(),
            "can_manage": request.membership.has_role(Role.ADMIN),
        },
        status=status,
    )


@workspace_view()
def settings_page(request: WorkspaceRequest) -> HttpResponse:
    return _settings_page(request)


@sensitive_post_parameters("token")  # the connect form also holds the token field
@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def oauth_begin(request: WorkspaceRequest) -> HttpResponse:
    form = InstanceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a LaunchDarkly instance from the list.")
        return redirect("connections:settings", slug=request.workspace.slug)
    instance = form.cleaned_data["instance"]
    state = new_state()
    verifier, _ = new_pkce_pair()
    now = time.time()
    pending = {
        key: entry
        for key, entry in request.session.get(OAUTH_SESSION_KEY, {}).items()
        if now - entry["at"] < OAUTH_STATE_TTL_S
    }
    pending[state] = {
        "user": request.user.pk,
        "workspace": request.workspace.slug,
        "instance": instance,
        "verifier": verifier,
        "at": now,
    }
    request.session[OAUTH_SESSION_KEY] = dict(list(pending.items())[-OAUTH_PENDING_MAX:])
    url = services.oauth_client(instance).authorization_url(state=state, code_verifier=verifier)
    return redirect(url)


def _connected_message(request: HttpRequest, change: services.ConnectionChange) -> None:
    if change.target_changed:
        queued = (
            f" The {change.cancelled} queued metric(s) planned for the previous account were "
            "cancelled, so none of them is created in this one."
            if change.cancelled
            else ""
        )
        messages.warning(
            request,
            "LaunchDarkly is connected, to a different account than before."
            + queued
            + " Choose the project for metrics in this account.",
        )
    else:
        messages.success(request, "LaunchDarkly is connected. Now choose the project for metrics.")


def _oauth_error(request: HttpRequest, message: str, slug: str | None = None) -> HttpResponse:
    return render(
        request, "connections/oauth_error.html", {"message": message, "slug": slug}, status=400
    )


@login_required
@sensitive_variables("code", "entry", "pending", "tokens")
def oauth_callback(request: AuthenticatedRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    pending = request.session.get(OAUTH_SESSION_KEY, {})
    # Single use: the state leaves the session before anything else happens.
    entry = pending.pop(state, None) if state else None
    request.session[OAUTH_SESSION_KEY] = pending
    if entry is None or entry["user"] != request.user.pk:
        return _oauth_error(
            request,
            "This LaunchDarkly sign-in is not valid: it was already used, started in another "
            "browser or by another user, or never started. Start again from the settings page.",
        )
    slug = entry["workspace"]
    if time.time() - entry["at"] >= OAUTH_STATE_TTL_S:
        return _oauth_error(
            request, "This LaunchDarkly sign-in took too long and expired. Start again.", slug
        )
    membership = membership_for(user=request.user, slug=slug)
    if membership is None or not membership.has_role(Role.ADMIN):
        return _oauth_error(request, "You can no longer connect this workspace.")
    if request.GET.get("error"):
        reason = (
            "You declined access in LaunchDarkly, so nothing was connected."
            if request.GET["error"] == "access_denied"
            else f"LaunchDarkly refused the authorisation ({request.GET['error'][:60]})."
        )
        return _oauth_error(request, reason, slug)
    code = request.GET.get("code", "")
    if not code:
        return _oauth_error(request, "LaunchDarkly sent no authorisation code. Start again.", slug)

    with tenant_scope(membership.tenant):
        try:
            tokens = services.oauth_client(entry["instance"]).exchange_code(
                code=code, code_verifier=entry["verifier"]
            )
            change = services.connection_connect_oauth(
                actor=request.user, instance=entry["instance"], tokens=tokens
            )
        except errors.InvalidGrant:
            return _oauth_error(
                request, "The authorisation code was used already or expired. Start again.", slug
            )
        except errors.LaunchDarklyError:
            return _oauth_error(
                request,
                "LaunchDarkly's sign-in service did not answer properly. Nothing was saved; "
                "try again in a moment.",
                slug,
            )
        except services.ConnectionRefused as exc:
            return _oauth_error(request, str(exc), slug)
    _connected_message(request, change)
    return redirect("connections:project", slug=slug)


@sensitive_post_parameters("token")
@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def api_token(request: WorkspaceRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            change = services.connection_connect_api_token(
                actor=request.user,
                instance=form.cleaned_data["instance"],
                token=form.cleaned_data["token"],
            )
        except services.ConnectionRefused as exc:
            form.add_error("token", str(exc))
        else:
            _connected_message(request, change)
            return redirect("connections:project", slug=request.workspace.slug)
    return _settings_page(request, token_form=form, status=400)


@sensitive_post_parameters("token")
@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def import_token(request: WorkspaceRequest) -> HttpResponse:
    connection = selectors.connection_of_workspace()
    if connection is None or not connection.is_usable:
        messages.info(request, "Connect LaunchDarkly first.")
        return redirect("connections:settings", slug=request.workspace.slug)
    form = ImportTokenForm(request.POST)
    if form.is_valid():
        try:
            services.connection_set_import_token(
                actor=request.user, connection=connection, token=form.cleaned_data["token"]
            )
        except services.ConnectionRefused as exc:
            messages.error(request, f"{exc} The import token was not changed.")
        else:
            messages.success(request, connection.import_access[1])
    return redirect("connections:settings", slug=request.workspace.slug)


def _needs_reauth(request: WorkspaceRequest, connection, exc: Exception) -> HttpResponse:
    services.connection_mark_needs_reauth(
        connection=connection, reason="LaunchDarkly rejected the stored credentials."
    )
    messages.error(request, "LaunchDarkly no longer accepts this connection. Reconnect it.")
    return redirect("connections:settings", slug=request.workspace.slug)


@workspace_view(minimum_role=Role.ADMIN)
def project(request: WorkspaceRequest) -> HttpResponse:
    connection = selectors.connection_of_workspace()
    if connection is None or connection.status == Status.DISCONNECTED:
        messages.info(request, "Connect LaunchDarkly first.")
        return redirect("connections:settings", slug=request.workspace.slug)
    error = ""
    if request.method == "POST":
        form = ProjectForm(request.POST)
        if form.is_valid():
            try:
                change = services.connection_choose_project(
                    actor=request.user,
                    connection=connection,
                    project_key=form.cleaned_data["project_key"],
                )
            except services.ReauthorizationRequired as exc:
                return _needs_reauth(request, connection, exc)
            except services.ConnectionRefused as exc:
                error = str(exc)
            else:
                cancelled = (
                    f" The {change.cancelled} queued metric(s) planned for the previous project "
                    "were cancelled; apply a plan again to create them here."
                    if change.cancelled
                    else ""
                )
                messages.success(
                    request, f"Metrics will go to {connection.project_name}.{cancelled}"
                )
                return redirect("connections:settings", slug=request.workspace.slug)
        else:
            error = "Choose a project."
    try:
        projects = services.connection_projects(connection=connection)
    except (errors.Unauthorized, services.ReauthorizationRequired) as exc:
        return _needs_reauth(request, connection, exc)
    except errors.RateLimited as exc:
        projects = []
        error = error or (
            "LaunchDarkly is rate limiting this account (your syncs share its limit): "
            f"reload in {max(1, round(exc.retry_after_s))} s."
        )
    except errors.LaunchDarklyError:
        projects = []
        error = error or "LaunchDarkly could not list your projects just now. Reload to retry."
    return render(
        request,
        "connections/project.html",
        {"connection": connection, "projects": projects, "error": error},
        status=400 if error else 200,
    )


@workspace_view(minimum_role=Role.ADMIN)
def disconnect(request: WorkspaceRequest) -> HttpResponse:
    """GET asks (saying what happens to queued work); POST disconnects."""
    connection = selectors.connection_of_workspace()
    if connection is None or connection.status == Status.DISCONNECTED:
        messages.info(request, "LaunchDarkly is not connected.")
        return redirect("connections:settings", slug=request.workspace.slug)
    if request.method == "POST":
        cancelled = services.connection_disconnect(actor=request.user, connection=connection)
        queued = (
            f" {cancelled} queued metric change{'s were' if cancelled != 1 else ' was'} cancelled."
            if cancelled
            else ""
        )
        messages.success(
            request,
            "LaunchDarkly is disconnected and its token forgotten."
            + queued
            + " The metrics already in LaunchDarkly are untouched.",
        )
        return redirect("connections:settings", slug=request.workspace.slug)
    return render(
        request,
        "connections/disconnect.html",
        {"connection": connection, "queued": services.connection_disconnect_would_cancel()},
    )
