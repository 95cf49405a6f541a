from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connector.connections"
    label = "connections"
    verbose_name = "LaunchDarkly connections"
