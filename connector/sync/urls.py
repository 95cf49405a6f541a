from django.urls import path

from connector.sync import views

app_name = "sync"

urlpatterns = [
    path("ops/", views.operators_overview, name="ops"),
    path("w/<slug:slug>/sync/", views.status, name="status"),
    path("w/<slug:slug>/sync/settings/", views.sync_settings_page, name="settings"),
    path("w/<slug:slug>/sync/runs/<int:run_id>/", views.run_detail, name="run"),
    path("w/<slug:slug>/sync/runs/<int:run_id>/progress/", views.run_progress, name="progress"),
    path(
        "w/<slug:slug>/sync/runs/<int:run_id>/retry-failed/",
        views.run_retry_failed,
        name="retry_failed",
    ),
    path("w/<slug:slug>/sync/items/<int:item_id>/retry/", views.item_retry, name="item_retry"),
]
