from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "connector.sources"
    label = "sources"
    verbose_name = "Source events"

    def ready(self) -> None:
        from connector.sources import overview  # noqa: F401  (connects its steps)
