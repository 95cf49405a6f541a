"""Seed a demo user and workspace for `make run`. Safe to run again."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from connector.sources.demo import seed_demo_catalog
from tenants.models import AuditAction, Membership, Role, Tenant, User
from tenants.scope import tenant_scope
from tenants.services import audit_record

DEMO_SLUG = "demo"


class Command(BaseCommand):
    help = "Create the demo user and workspace (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        email, password = settings.DEMO_SIGN_IN["email"], settings.DEMO_SIGN_IN["password"]
        user, created = User.objects.get_or_create(email=email, defaults={"name": "Demo User"})
        if created:
            user.set_password(password)
            user.save()
        tenant, tenant_created = Tenant.objects.get_or_create(
            slug=DEMO_SLUG, defaults={"name": "Demo Workspace"}
        )
        Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Role.OWNER})
        if tenant_created:
            with tenant_scope(tenant):
                audit_record(actor=user, action=AuditAction.WORKSPACE_CREATED, target=DEMO_SLUG)
        with tenant_scope(tenant):
            catalog = seed_demo_catalog()
        self.stdout.write(
            f"Demo workspace ready for {email}; its event catalog: {catalog['created']} added, "
            f"{catalog['updated']} updated, {catalog['unchanged']} unchanged"
        )
