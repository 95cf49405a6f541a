import pytest

from tenants.models import AuditEvent
from tenants.scope import TenantScopeMissing, TenantScopeViolation, tenant_scope
from tests.factories import TenantFactory


def test_scoped_manager__no_workspace_in_scope__raises(db):
    with pytest.raises(TenantScopeMissing):
        list(AuditEvent.objects.all())
    with pytest.raises(TenantScopeMissing):
        AuditEvent.objects.count()


def test_scoped_manager__create_without_scope__raises(db):
    tenant = TenantFactory()
    with pytest.raises(TenantScopeMissing):
        AuditEvent.objects.create(tenant=tenant, action="x")
    assert AuditEvent.objects.unscoped().count() == 0


def test_scoped_manager__in_scope__sees_only_that_workspace(db):
    a, b = TenantFactory(), TenantFactory()
    with tenant_scope(a):
        AuditEvent.objects.create(action="in-a")
    with tenant_scope(b):
        AuditEvent.objects.create(action="in-b")
        assert list(AuditEvent.objects.values_list("action", flat=True)) == ["in-b"]
    with tenant_scope(a):
        assert list(AuditEvent.objects.values_list("action", flat=True)) == ["in-a"]
    assert AuditEvent.objects.unscoped().count() == 2


def test_scoped_model__save_of_other_workspace_row__raises(db):
    a, b = TenantFactory(), TenantFactory()
    with tenant_scope(a):
        event = AuditEvent.objects.create(action="in-a")
    with tenant_scope(b), pytest.raises(TenantScopeViolation):
        event.action = "tampered"
        event.save()
    assert AuditEvent.objects.unscoped().get(pk=event.pk).action == "in-a"


def test_scope__after_block__is_gone_again(db):
    with tenant_scope(TenantFactory()):
        AuditEvent.objects.count()
    with pytest.raises(TenantScopeMissing):
        AuditEvent.objects.count()
