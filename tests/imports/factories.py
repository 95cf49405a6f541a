"""Event import rows for tests that need them without sending anything."""

from connector.imports.models import BatchStatus, ImportBatch, OccurrenceUpload
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


def make_occurrence_upload(tenant, *, rows=None):
    with tenant_scope(tenant):
        return OccurrenceUpload.objects.create(
            tenant=tenant,
            filename="occurrences.jsonl",
            file_format="jsonl",
            rows=rows
            or [
                {
                    "line": 1,
                    "occurrence": {"event": "a", "contexts": {"user_id": "u"}},
                    "errors": [],
                }
            ],
        )
