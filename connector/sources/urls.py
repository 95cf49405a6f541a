from django.urls import path

from connector.sources import views

app_name = "sources"

urlpatterns = [
    path("w/<slug:slug>/events/upload/", views.upload, name="upload"),
    path("w/<slug:slug>/events/upload/<int:upload_id>/", views.upload_preview, name="preview"),
    path(
        "w/<slug:slug>/events/upload/<int:upload_id>/apply/",
        views.upload_apply,
        name="upload_apply",
    ),
    path("w/<slug:slug>/settings/api-keys/", views.api_keys, name="api_keys"),
    path(
        "w/<slug:slug>/settings/api-keys/<int:key_id>/revoke/",
        views.api_key_revoke,
        name="api_key_revoke",
    ),
]
