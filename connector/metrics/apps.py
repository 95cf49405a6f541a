from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "connector.metrics"
    label = "metrics"
    verbose_name = "Metric mappings"
