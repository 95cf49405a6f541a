from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "connector.web"
    label = "web"

    def ready(self) -> None:
        from connector.web import checks  # noqa: F401 (registers the system checks)
