"""Re-encrypt every stored LaunchDarkly token under the newest TOKEN_ENCRYPTION_KEYS key.

Rotation: put a new key first in TOKEN_ENCRYPTION_KEYS (keep the old ones after it),
deploy, run this command, then drop the old keys.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from connector import crypto
from connector.connections.models import LaunchDarklyConnection

SECRET_FIELDS = ("access_token_encrypted", "refresh_token_encrypted")


class Command(BaseCommand):
    help = "Re-encrypt stored LaunchDarkly tokens under the newest key."

    def handle(self, *args, **options) -> None:
        rotated = 0
        # Every workspace's rows, on purpose: key rotation is an operator's job.
        ids = LaunchDarklyConnection.objects.unscoped().values_list("pk", flat=True)
        for pk in ids.iterator():
            with transaction.atomic():
                row = LaunchDarklyConnection.objects.unscoped().select_for_update().get(pk=pk)
                changes = {
                    field: crypto.reencrypt(getattr(row, field))
                    for field in SECRET_FIELDS
                    if getattr(row, field)
                }
                if changes:
                    LaunchDarklyConnection.objects.unscoped().filter(pk=pk).update(**changes)
                    rotated += 1
        self.stdout.write(f"Re-encrypted the tokens of {rotated} connection(s).")
