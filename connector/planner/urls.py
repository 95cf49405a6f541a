from django.urls import path

from connector.planner import views

app_name = "planner"

urlpatterns = [
    path("w/<slug:slug>/events/", views.picker, name="picker"),
    path("w/<slug:slug>/events/plan/", views.plan_new, name="plan_create"),
    path("w/<slug:slug>/events/units/", views.register_unit, name="register_unit"),
    path("w/<slug:slug>/plans/<int:plan_id>/", views.plan_review, name="plan"),
    path("w/<slug:slug>/plans/<int:plan_id>/apply/", views.plan_apply_view, name="plan_apply"),
    path("w/<slug:slug>/plans/<int:plan_id>/choose/", views.plan_choose_view, name="plan_choose"),
    path("w/<slug:slug>/plans/<int:plan_id>/groups/", views.plan_groups, name="plan_groups"),
    path("w/<slug:slug>/metrics/conventions/", views.conventions, name="conventions"),
]
