from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "connector.web"
    label = "web"
