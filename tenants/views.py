"""Workspace views: thin, they check input, call a service and render."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_POST

from tenants import selectors, services, throttle
from tenants.forms import InvitationForm, RoleForm, SignInForm, SignUpForm, WorkspaceForm
from tenants.http import AuthenticatedRequest, WorkspaceRequest
from tenants.models import Role
from tenants.overview import checklist_for
from tenants.scope import tenant_scope


def workspace_view(minimum_role: str = Role.MEMBER) -> Callable:
    """Resolve `/w/<slug>/...` to a workspace the user belongs to with at least
    `minimum_role`, and run the view inside that workspace's scope.

    Not a member, not enough of a role, no such workspace: all the same 404, so a
    URL reveals nothing about workspaces one cannot see."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapped(request: WorkspaceRequest, slug: str, *args, **kwargs) -> HttpResponse:
            membership = selectors.membership_for(user=request.user, slug=slug)
            if membership is None or not membership.has_role(minimum_role):
                raise Http404("No such workspace.")
            request.workspace = membership.tenant
            request.membership = membership
            with tenant_scope(membership.tenant):
                return view(request, *args, **kwargs)

        return wrapped

    return decorator


class PasswordResetView(auth_views.PasswordResetView):
    """The reset link is built from PUBLIC_URL: the Host header is the requester's to
    choose, and a link to their host would hand them the victim's reset token."""

    template_name = "tenants/password_reset.html"
    email_template_name = "tenants/email/password_reset.txt"
    subject_template_name = "tenants/email/password_reset_subject.txt"
    success_url = reverse_lazy("tenants:password_reset_done")

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        self.extra_email_context = {"public_url": settings.PUBLIC_URL}
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "tenants/password_reset_confirm.html"
    success_url = reverse_lazy("tenants:password_reset_complete")

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        response = super().form_valid(form)
        # The owner proved it through their mailbox: lift every sign-in pause.
        throttle.forget_account(email=form.user.email)
        return response


class SignInView(auth_views.LoginView):
    form_class = SignInForm
    template_name = "tenants/signin.html"
    redirect_authenticated_user = True


def sign_up(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("tenants:home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, tenant = services.user_sign_up(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                name=form.cleaned_data["name"],
                workspace_name=form.cleaned_data["workspace_name"],
                workspace_slug=form.cleaned_data["workspace_slug"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            login(request, user)
            messages.success(request, f"Welcome! Your workspace {tenant.name} is ready.")
            next_url = request.GET.get("next", "")
            if next_url.startswith("/invitations/"):
                return redirect(next_url)
            return redirect("tenants:workspace", slug=tenant.slug)
    return render(request, "tenants/signup.html", {"form": form})


@login_required
def home(request: AuthenticatedRequest) -> HttpResponse:
    memberships = list(selectors.workspaces_for_user(user=request.user))
    if len(memberships) == 1:
        return redirect("tenants:workspace", slug=memberships[0].tenant.slug)
    return render(request, "tenants/home.html", {"memberships": memberships})


@login_required
def workspace_new(request: AuthenticatedRequest) -> HttpResponse:
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tenant = services.workspace_create(
                actor=request.user, name=form.cleaned_data["name"], slug=form.cleaned_data["slug"]
            )
        except ValidationError as exc:
            form.add_error("slug", exc)
        else:
            messages.success(request, f"Workspace {tenant.name} created.")
            return redirect("tenants:workspace", slug=tenant.slug)
    return render(request, "tenants/workspace_new.html", {"form": form})


@workspace_view()
def workspace(request: WorkspaceRequest) -> HttpResponse:
    checklist = checklist_for(request.membership)
    return render(request, "tenants/workspace.html", {"checklist": checklist})


def _members_page(
    request: WorkspaceRequest, invitation_form: InvitationForm | None = None, status: int = 200
) -> HttpResponse:
    actor_role = request.membership.role
    grantable = services.grantable_roles(actor_role)
    return render(
        request,
        "tenants/members.html",
        {
            "members": selectors.members_of(tenant=request.workspace),
            "invitation_form": invitation_form or InvitationForm(actor_role=actor_role),
            "roles": [(role.value, role.label) for role in grantable],
            # A member whose role the actor may not give is shown, not editable.
            "editable_roles": [role.value for role in grantable],
        },
        status=status,
    )


@workspace_view()
def members(request: WorkspaceRequest) -> HttpResponse:
    return _members_page(request)


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def member_invite(request: WorkspaceRequest) -> HttpResponse:
    form = InvitationForm(request.POST, actor_role=request.membership.role)
    if form.is_valid():
        try:
            services.invitation_create(
                actor=request.user, email=form.cleaned_data["email"], role=form.cleaned_data["role"]
            )
        except ValidationError as exc:
            form.add_error("email", exc)
        except services.RoleChangeRefused as exc:
            form.add_error("role", str(exc))
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("tenants:members", slug=request.workspace.slug)
    return _members_page(request, invitation_form=form, status=400)


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def member_role(request: WorkspaceRequest, membership_id: int) -> HttpResponse:
    target = get_object_or_404(selectors.members_of(tenant=request.workspace), pk=membership_id)
    form = RoleForm(request.POST, actor_role=request.membership.role)
    if not form.is_valid():
        messages.error(request, " ".join(str(error) for error in form.errors["role"]))
        return redirect("tenants:members", slug=request.workspace.slug)
    try:
        changed = services.membership_change_role(
            actor=request.user, membership=target, role=form.cleaned_data["role"]
        )
    except services.RoleChangeRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{changed.user.email} is now {changed.get_role_display()}.")
    return redirect("tenants:members", slug=request.workspace.slug)


@workspace_view(minimum_role=Role.ADMIN)
def audit_log(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "tenants/audit.html", {"events": selectors.audit_events()})


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link. Anonymous visitors are asked to sign in or sign up first."""
    try:
        pending = services.invitation_by_token(raw_token=token)
    except services.InvitationInvalid as exc:
        return render(request, "tenants/invitation.html", {"error": str(exc)}, status=410)
    if not request.user.is_authenticated:
        here = reverse("tenants:invitation", args=[token])
        return render(request, "tenants/invitation.html", {"invitation": pending, "next": here})
    if request.method == "POST":
        try:
            membership = services.invitation_accept(raw_token=token, actor=request.user)
        except services.InvitationInvalid as exc:
            return render(request, "tenants/invitation.html", {"error": str(exc)}, status=410)
        messages.success(request, f"You joined {membership.tenant.name}.")
        return redirect("tenants:workspace", slug=membership.tenant.slug)
    return render(request, "tenants/invitation.html", {"invitation": pending})
