from django.urls import path

from connector.planner import document_views as views

app_name = "metrics_code"

urlpatterns = [
    path("w/<slug:slug>/metrics/import/", views.document_import, name="import"),
    path("w/<slug:slug>/metrics/import/plan/", views.document_import_plan, name="import_plan"),
    path("w/<slug:slug>/metrics/export/", views.document_export_view, name="export"),
]
