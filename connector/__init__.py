"""The metric sync connector for LaunchDarkly (Django project package)."""

from importlib import metadata

try:
    __version__ = metadata.version("ld-metric-connector")
except metadata.PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0"

# Celery's app is imported with Django so that `shared_task` binds to it.
from connector.celery import app as celery_app

__all__ = ["__version__", "celery_app"]
