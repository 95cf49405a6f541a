from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "connector.imports"
    label = "imports"
    verbose_name = "Event import"
