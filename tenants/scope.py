"""The tenant scope: which workspace the running code acts for.

Every tenant-owned model is read and written through `TenantScopedManager`, which
filters by the workspace in scope and raises when there is none, so a forgotten
filter is an error instead of a leak. The scope lives in a context variable set
by views (from the URL, after the membership check) and by tasks (from their
argument). Code that must cross workspaces says so by name: `Model.objects.unscoped()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from django.apps import apps
from django.db import models

if TYPE_CHECKING:
    from tenants.models import Tenant

_current_tenant: ContextVar[Tenant | None] = ContextVar("current_tenant", default=None)


class TenantScopeMissing(RuntimeError):
    """A tenant-owned model was queried with no workspace in scope."""


class TenantScopeViolation(RuntimeError):
    """A row of one workspace was about to be written while another is in scope."""


def current_tenant() -> Tenant:
    tenant = _current_tenant.get()
    if tenant is None:
        raise TenantScopeMissing(
            "No workspace in scope. Wrap the code in tenant_scope(tenant), "
            "or call .unscoped() if it must cross workspaces."
        )
    return tenant


def current_tenant_or_none() -> Tenant | None:
    return _current_tenant.get()


@contextmanager
def tenant_scope(tenant: Tenant) -> Iterator[Tenant]:
    if tenant is None or tenant.pk is None:
        raise TenantScopeMissing("tenant_scope() needs a saved workspace")
    token = _current_tenant.set(tenant)
    try:
        yield tenant
    finally:
        _current_tenant.reset(token)


R = TypeVar("R")


def runs_in_workspace(task: Callable[..., R]) -> Callable[..., R | None]:
    """For a task whose first argument is a workspace id: run it in that workspace's
    scope, and do nothing if the workspace is gone (its rows went with it). Tasks
    take ids, never objects, so this is how every task enters its scope."""

    @wraps(task)
    def run(tenant_id: int, *args: Any, **kwargs: Any) -> R | None:
        # By name: tenants.models imports this module.
        tenant = apps.get_model("tenants", "Tenant").objects.filter(pk=tenant_id).first()
        if tenant is None:
            return None
        with tenant_scope(tenant):
            return task(tenant_id, *args, **kwargs)

    return run


class TenantScopedManager(models.Manager):
    """Default manager of tenant-owned models: scoped to the current workspace or raises."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(tenant=current_tenant())

    def unscoped(self) -> models.QuerySet:
        """Every workspace's rows. Only for code that must cross workspaces; grep for it."""
        return super().get_queryset()


class TenantOwnedModel(models.Model):
    """Base for every model that belongs to one workspace."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantScopedManager()

    class Meta:
        abstract = True
        # Django's internals (related-object access, deletion) use the base manager,
        # which stays a plain Manager; every query we write goes through `objects`.

    def save(self, *args, **kwargs) -> None:
        tenant = current_tenant()
        if self.tenant_id is None:
            self.tenant = tenant
        elif self.tenant_id != tenant.pk:
            raise TenantScopeViolation(
                f"{type(self).__name__} of workspace {self.tenant_id} saved "
                f"while workspace {tenant.pk} is in scope"
            )
        super().save(*args, **kwargs)
