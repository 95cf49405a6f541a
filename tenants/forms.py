from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from tenants.models import Role, User
from tenants.services import (
    RoleChangeRefused,
    check_may_grant,
    grantable_roles,
    validate_new_slug,
)


class SignUpForm(forms.Form):
    name = forms.CharField(max_length=150, required=False, label="Your name")
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, strip=False)
    workspace_name = forms.CharField(max_length=100, label="Workspace name")
    workspace_slug = forms.CharField(
        max_length=40,
        label="Workspace address",
        help_text="Lowercase letters, digits and hyphens, e.g. acme-growth.",
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError("An account with this email exists. Sign in instead.")
        return email

    def clean_workspace_slug(self) -> str:
        slug = self.cleaned_data["workspace_slug"].strip()
        validate_new_slug(slug)
        return slug

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        password = cleaned.get("password")
        if password:
            candidate = User(email=cleaned.get("email", ""), name=cleaned.get("name", ""))
            try:
                password_validation.validate_password(password, candidate)
            except ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class WorkspaceForm(forms.Form):
    name = forms.CharField(max_length=100, label="Workspace name")
    slug = forms.CharField(max_length=40, label="Workspace address")

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"].strip()
        validate_new_slug(slug)
        return slug


class _SaysWhenThrottled:
    """For sign-in forms: the throttle (an authentication backend) leaves its refusal
    on the request; say how long to wait instead of "wrong password"."""

    request: HttpRequest | None

    def get_invalid_login_error(self) -> ValidationError:
        refusal = getattr(self.request, "signin_refusal", None)
        if refusal is not None:
            return ValidationError(refusal.message, code="throttled")
        return super().get_invalid_login_error()  # type: ignore[misc]


class SignInForm(_SaysWhenThrottled, AuthenticationForm):
    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True}))


class AdminSignInForm(_SaysWhenThrottled, AdminAuthenticationForm):
    pass


class _GrantForm(forms.Form):
    """A form whose role field offers only the roles the acting member may give, and
    says which rule refuses any other."""

    role = forms.ChoiceField(
        choices=Role.choices,
        initial=Role.MEMBER,
        error_messages={"invalid_choice": "Choose a role: owner, admin or member."},
    )

    def __init__(self, *args, actor_role: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.actor_role = actor_role
        self.fields["role"].widget.choices = [
            (role.value, role.label) for role in grantable_roles(actor_role)
        ]

    def clean_role(self) -> str:
        role = self.cleaned_data["role"]
        try:
            check_may_grant(self.actor_role, role)
        except RoleChangeRefused as exc:
            raise ValidationError(str(exc), code="not_grantable") from exc
        return role


class InvitationForm(_GrantForm):
    email = forms.EmailField()
    field_order = ["email", "role"]


class RoleForm(_GrantForm):
    pass
