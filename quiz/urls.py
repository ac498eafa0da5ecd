from django.urls import path, register_converter

from config import converters  # noqa: F401 - registers <position:…>
from quiz import views
from quiz.converters import TokenConverter

# Every integer and token in a quiz URL goes through a bounded converter: out-of-range values are a
# 404 from the resolver, never a query (see quiz/converters.py).
register_converter(TokenConverter, "game_token")

app_name = "quiz"
urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("play/", views.start, name="start"),
    path("play/<game_token:token>/", views.play, name="play"),
    path("play/<game_token:token>/answer", views.answer, name="answer"),
    path("play/<game_token:token>/tile/<position:position>.jpg", views.tile, name="tile"),
    path("play/<game_token:token>/results", views.results, name="results"),
    path("r/<game_token:share_token>/", views.shared, name="shared"),
    path("r/<game_token:share_token>/tile/<position:position>.jpg", views.shared_tile, name="shared_tile"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("conditioning/", views.conditioning, name="conditioning"),
    path("conditioning/<slug:name>/<str:file>", views.conditioning_tile, name="conditioning_tile"),
]
