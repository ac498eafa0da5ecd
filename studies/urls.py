from django.urls import path

from studies import staff_views, views

app_name = "studies"
urlpatterns = [
    # What a rater's link reaches: neutral paths, the token and an item position or opaque key only.
    path("s/<str:token>/", views.welcome, name="welcome"),
    path("s/<str:token>/item/<int:position>/", views.item, name="item"),
    path("s/<str:token>/image/<str:key>.jpg", views.tile, name="tile"),
    path("s/<str:token>/finish", views.finish, name="finish"),
    path("s/<str:token>/debrief", views.debrief, name="debrief"),
    # Staff only.
    path("studies/", staff_views.dashboard, name="dashboard"),
    path("studies/<slug:name>/", staff_views.study_detail, name="study_detail"),
    path("studies/<slug:name>/status", staff_views.study_status, name="study_status"),
    path("studies/<slug:name>/invite", staff_views.study_invite, name="study_invite"),
    path("studies/<slug:name>/raters/<str:code>/revoke", staff_views.rater_revoke, name="rater_revoke"),
    path("studies/<slug:name>/curate", staff_views.curate, name="curate"),
    path("studies/<slug:name>/candidates/<str:code>.jpg", staff_views.candidate_tile, name="candidate_tile"),
]
