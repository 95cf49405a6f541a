"""The Celery app. Configuration lives in Django settings under CELERY_*."""

import os

from celery import Celery

from connector.observability.context import connect_celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")

app = Celery("connector")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
connect_celery_signals()  # log context (task id) and Django's LOGGING in workers
