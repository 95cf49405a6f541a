from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "connector.metrics"
    label = "metrics"
    verbose_name = "Metric mappings"

    def ready(self) -> None:
        from connector.metrics import overview  # noqa: F401  (connects its steps)
