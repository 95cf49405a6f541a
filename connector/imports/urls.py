from django.urls import path

from connector.imports import upload_views, views

app_name = "imports"

urlpatterns = [
    path("w/<slug:slug>/imports/", views.status, name="status"),
    path("w/<slug:slug>/imports/settings/", views.settings_page, name="settings"),
    path("w/<slug:slug>/imports/batches/<int:batch_id>/replay/", views.replay, name="replay"),
    path("w/<slug:slug>/imports/upload/", upload_views.upload, name="upload"),
    path(
        "w/<slug:slug>/imports/upload/<int:occurrence_upload_id>/",
        upload_views.upload_preview,
        name="upload_preview",
    ),
    path(
        "w/<slug:slug>/imports/upload/<int:occurrence_upload_id>/apply/",
        upload_views.upload_apply,
        name="upload_apply",
    ),
]
