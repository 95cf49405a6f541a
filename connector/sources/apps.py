from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "connector.sources"
    label = "sources"
    verbose_name = "Source events"
