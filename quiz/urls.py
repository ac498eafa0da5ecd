from django.urls import path

from quiz import views

app_name = "quiz"
urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("play/", views.start, name="start"),
    path("play/<str:token>/", views.play, name="play"),
    path("play/<str:token>/answer", views.answer, name="answer"),
    path("play/<str:token>/tile/<int:position>.jpg", views.tile, name="tile"),
    path("play/<str:token>/results", views.results, name="results"),
    path("r/<str:share_token>/", views.shared, name="shared"),
    path("r/<str:share_token>/tile/<int:position>.jpg", views.shared_tile, name="shared_tile"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
]
