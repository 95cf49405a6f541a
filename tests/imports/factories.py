"""Event import rows for tests that need them without sending anything."""

from connector.imports.models import BatchStatus, ImportBatch
from tenants.scope import tenant_scope


def make_batch(tenant, *, status=BatchStatus.DEAD, environment="production"):
    with tenant_scope(tenant):
        return ImportBatch.objects.create(
            tenant=tenant,
            environment_key=environment,
            project_key="default",
            first_id=1,
            last_id=1,
            count=1,
            payload_id="00000000-0000-0000-0000-000000000000",
            status=status,
        )
