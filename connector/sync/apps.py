from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "connector.sync"
    label = "sync"
    verbose_name = "Sync runs"

    def ready(self) -> None:
        from connector.sync import overview, receivers  # noqa: F401  (connects them)
