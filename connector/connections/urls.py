from django.urls import path

from connector.connections import views

app_name = "connections"

urlpatterns = [
    path("connect/launchdarkly/callback", views.oauth_callback, name="oauth_callback"),
    path("w/<slug:slug>/settings/", views.settings_page, name="settings"),
    path("w/<slug:slug>/settings/launchdarkly/oauth/", views.oauth_begin, name="oauth_begin"),
    path("w/<slug:slug>/settings/launchdarkly/token/", views.api_token, name="api_token"),
    path("w/<slug:slug>/settings/launchdarkly/project/", views.project, name="project"),
    path("w/<slug:slug>/settings/launchdarkly/disconnect/", views.disconnect, name="disconnect"),
    path(
        "w/<slug:slug>/settings/launchdarkly/import-token/",
        views.import_token,
        name="import_token",
    ),
]
