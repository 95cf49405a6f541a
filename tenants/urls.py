from django.contrib.auth import views as auth_views
from django.urls import path

from tenants import views

app_name = "tenants"

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.sign_up, name="signup"),
    path("signin/", views.SignInView.as_view(), name="login"),
    path("signout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password-reset/",
        views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="tenants/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="tenants/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("workspaces/new/", views.workspace_new, name="workspace_new"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("w/<slug:slug>/", views.workspace, name="workspace"),
    path("w/<slug:slug>/members/", views.members, name="members"),
    path("w/<slug:slug>/members/invite/", views.member_invite, name="member_invite"),
    path("w/<slug:slug>/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path("w/<slug:slug>/audit/", views.audit_log, name="audit"),
]
