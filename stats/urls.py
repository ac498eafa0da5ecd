from django.urls import path

from stats import views

app_name = "stats"
urlpatterns = [
    path("", views.page, name="page"),
    path("refresh", views.refresh, name="refresh"),
    path("export/game.zip", views.game_export, name="game_export"),
]
