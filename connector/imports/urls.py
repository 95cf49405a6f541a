from django.urls import path

from connector.imports import views

app_name = "imports"

urlpatterns = [
    path("w/<slug:slug>/imports/", views.status, name="status"),
    path("w/<slug:slug>/imports/settings/", views.settings_page, name="settings"),
    path("w/<slug:slug>/imports/batches/<int:batch_id>/replay/", views.replay, name="replay"),
]
