from django.urls import path

from stats import views

app_name = "stats"
urlpatterns = [
    path("", views.page, name="page"),
    path("refresh", views.refresh, name="refresh"),
    path("export/game.zip", views.game_export, name="game_export"),
    path("study/<slug:name>/", views.study, name="study"),
    path("study/<slug:name>/publish", views.study_publish, name="study_publish"),
    path("study/<slug:name>/export.zip", views.study_export, name="study_export"),
]
