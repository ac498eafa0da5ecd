from django.urls import path, register_converter

from config import converters  # noqa: F401 - registers <position:…>
from studies import staff_views, views


class _Pattern:
    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class RaterToken(_Pattern):
    regex = "[0-9a-f]{48}"  # studies.models.new_rater_token


class ItemKey(_Pattern):
    regex = "[0-9a-f]{32}"  # studies.models.new_item_key


class Code(_Pattern):
    regex = "[A-Za-z0-9]{1,16}"  # rater and study-tile codes


# Anything that is not the shape of a token or key never reaches a view or the database: a plain 404.
register_converter(RaterToken, "rater_token")
register_converter(ItemKey, "item_key")
register_converter(Code, "code")

app_name = "studies"
urlpatterns = [
    # What a rater's link reaches: neutral paths, the token and an item position or opaque key only.
    path("s/<rater_token:token>/", views.welcome, name="welcome"),
    path("s/<rater_token:token>/item/<position:position>/", views.item, name="item"),
    path("s/<rater_token:token>/image/<item_key:key>.jpg", views.tile, name="tile"),
    path("s/<rater_token:token>/finish", views.finish, name="finish"),
    path("s/<rater_token:token>/debrief", views.debrief, name="debrief"),
    # Staff only.
    path("studies/", staff_views.dashboard, name="dashboard"),
    path("studies/<slug:name>/", staff_views.study_detail, name="study_detail"),
    path("studies/<slug:name>/status", staff_views.study_status, name="study_status"),
    path("studies/<slug:name>/invite", staff_views.study_invite, name="study_invite"),
    path("studies/<slug:name>/raters/<code:code>/revoke", staff_views.rater_revoke, name="rater_revoke"),
    path("studies/<slug:name>/curate", staff_views.curate, name="curate"),
    path("studies/<slug:name>/candidates/<code:code>.jpg", staff_views.candidate_tile, name="candidate_tile"),
]
