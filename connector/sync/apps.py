from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "connector.sync"
    label = "sync"
    verbose_name = "Sync runs"
