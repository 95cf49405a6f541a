from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connector.connections"
    label = "connections"
    verbose_name = "LaunchDarkly connections"

    def ready(self) -> None:
        from connector.connections import overview  # noqa: F401  (connects its steps)
