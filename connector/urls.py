from django.contrib import admin
from django.urls import include, path

# Adds `POST /api/v1/track` to the one /api/v1 (the catalog's API lives below imports
# in the layers, so it cannot import it; the root URLconf may).
import connector.imports.api  # noqa: F401
from connector.observability import views as observability_views
from connector.planner import api as metrics_api  # noqa: F401  # /api/v1/metrics/*, likewise
from connector.web import views as web_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", web_views.healthz, name="healthz"),
    path("readyz", web_views.readyz, name="readyz"),
    path("metrics", observability_views.metrics, name="metrics"),
    path("", include("tenants.urls")),
    path("", include("connector.connections.urls")),
    path("", include("connector.sync.urls")),
    path("api/v1/", include("connector.sources.api_urls")),
    path("", include("connector.sources.urls")),
    path("", include("connector.planner.urls")),
    path("", include("connector.planner.document_urls")),
    path("", include("connector.imports.urls")),
]
