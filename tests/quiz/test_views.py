"""The quiz over HTTP: forms, tile streaming, refusals, results and sharing (Django's test client)."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from PIL import Image

from generation.serving import blinded_jpeg, served_size
from quiz import services
from quiz.models import Game, GameRound
from tests.quiz.conftest import play_through

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


def _start(client: Client, nickname: str = "") -> Game:
    response = client.post("/play/", {"nickname": nickname})
    assert response.status_code == 302
    token = re.fullmatch(r"/play/([\w-]+)/", response["Location"]).group(1)
    return Game.objects.get(token=token)


def _answer(client: Client, game: Game, position: int, answer: str = "real", confidence: str = "sure", **extra):
    return client.post(f"/play/{game.token}/answer", {"position": position, "answer": answer,
                                                      "confidence": confidence}, **extra)


def test_the_landing_page_explains_the_game_and_offers_a_start_form(client, full_catalog):
    html = client.get("/").content.decode()
    assert "How your answers are used" in html and "20 tiles" in html
    assert 'action="/play/"' in html and "csrfmiddlewaretoken" in html
    assert "synthetic demo cohort" not in html


def test_the_landing_page_says_when_the_tiles_come_from_the_demo_cohort(client, full_catalog, settings):
    settings.RNAGAN_DEMO_COHORT = True
    assert "synthetic demo cohort" in client.get("/").content.decode()


def test_a_pool_too_small_is_explained_instead_of_a_start_button(client, catalog):
    catalog.fill(("lung",), real=3, gan=1, rnagan=1)
    html = client.get("/").content.decode()
    assert "too small for a game of 20" in html and 'action="/play/"' not in html
    response = client.post("/play/", {"nickname": ""})
    assert response.status_code == 409 and "too small" in response.content.decode()


def test_every_form_needs_its_csrf_token(full_catalog):
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/play/", {"nickname": "x"}).status_code == 403
    game = services.game_start(session_key="s")
    assert _answer(strict, game, 1).status_code == 403
    assert not GameRound.objects.filter(answered_at__isnull=False).exists()


def test_starting_ties_the_game_to_this_browser_and_remembers_the_nickname(client, full_catalog):
    game = _start(client, nickname="  Slide   Sleuth ")
    assert game.session_key == client.session.session_key
    assert game.nickname == "Slide Sleuth"
    assert 'value="Slide Sleuth"' in client.get("/").content.decode()


def test_the_play_page_reveals_nothing_about_its_tile(client, full_catalog):
    game = _start(client)
    secrets = [(t.public_id, t.sha256, t.image.name, t.image.url) for t in full_catalog.tiles]
    html = client.get(f"/play/{game.token}/").content.decode()
    for public_id, sha256, name, url in secrets:
        assert public_id not in html and sha256 not in html and name not in html and url not in html
    assert "/media/" not in html
    assert f'src="/play/{game.token}/tile/1.jpg"' in html and 'alt="Tissue tile 1 of 20"' in html


def test_the_first_page_of_a_real_tile_and_of_a_synthetic_one_are_the_same_but_for_the_token(full_catalog):
    pages = {}
    for seed in range(40):
        game = services.game_start(session_key=f"s{seed}", seed=seed)
        truth = "real" if game.rounds.get(position=1).source == "real" else "synthetic"
        if truth not in pages:
            pages[truth] = Client().get(f"/play/{game.token}/").content.decode().replace(game.token, "TOKEN")
        if len(pages) == 2:
            break
    strip_csrf = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    real, synthetic = (strip_csrf.sub("", pages[k]) for k in ("real", "synthetic"))
    assert real == synthetic


def test_tiles_stream_blinded_with_game_scoped_etags_and_private_caching(client, full_catalog):
    first, second = services.game_start(session_key="a"), services.game_start(session_key="b")
    shared_tile = next(r.tile for r in first.rounds.all() if second.rounds.filter(tile=r.tile).exists())
    pos_a, pos_b = first.rounds.get(tile=shared_tile).position, second.rounds.get(tile=shared_tile).position
    for game, position in ((first, pos_a), (second, pos_b)):
        for earlier in range(1, position):
            _answer(client, game, earlier)
    url_a, url_b = f"/play/{first.token}/tile/{pos_a}.jpg", f"/play/{second.token}/tile/{pos_b}.jpg"
    a, b = client.get(url_a), client.get(url_b)
    assert a.status_code == b.status_code == 200
    assert a["Content-Type"] == "image/jpeg"
    assert a.content == b.content == blinded_jpeg(shared_tile.image.read())
    assert a["ETag"] != b["ETag"] and shared_tile.sha256 not in a["ETag"]
    assert a["Cache-Control"] == "private, max-age=31536000, immutable"
    assert not a.has_header("Last-Modified")
    assert client.get(url_a, HTTP_IF_NONE_MATCH=a["ETag"]).status_code == 304
    assert client.get(f"/play/{first.token}/tile/99.jpg").status_code == 404
    assert client.get("/play/nope/tile/1.jpg").status_code == 404


def test_a_future_rounds_tile_answers_404_until_its_round_comes(client, full_catalog):
    game = services.game_start(session_key="s")
    assert client.get(f"/play/{game.token}/tile/1.jpg").status_code == 200
    for position in range(2, 21):
        assert client.get(f"/play/{game.token}/tile/{position}.jpg").status_code == 404
    _answer(client, game, 1)
    assert client.get(f"/play/{game.token}/tile/2.jpg").status_code == 200
    assert client.get(f"/play/{game.token}/tile/1.jpg").status_code == 200  # answered: still shown
    assert client.get(f"/play/{game.token}/tile/3.jpg").status_code == 404


def test_every_served_tile_has_the_same_length_headers_and_etag_pattern_whatever_its_source(client, full_catalog):
    # The fixtures' real tiles are busier (≈ 27 kB) than the synthetic ones (≈ 17 kB) on disk.
    stored = {t.source: set() for t in full_catalog.tiles}
    served: dict[str, list] = {}
    for seed in range(4):
        game = services.game_start(session_key=f"h{seed}", seed=seed)
        for played in game.rounds.select_related("tile").order_by("position"):
            response = client.get(f"/play/{game.token}/tile/{played.position}.jpg")
            _answer(client, game, played.position)
            stored[played.source].add(played.tile.image.size)
            headers = {k: (len(v) if k == "ETag" else v) for k, v in response.headers.items()}
            served.setdefault(played.source, []).append((len(response.content), headers))
    assert min(stored["real"]) > max(stored["gan"] | stored["rnagan"])  # the sizes on disk differ…
    everything = {(size, tuple(sorted(h.items()))) for rows in served.values() for size, h in rows}
    assert len(everything) == 1  # …what a browser receives does not
    (size, headers), = everything
    assert size == served_size() and dict(headers)["Content-Length"] == str(served_size())
    assert set(served) == {"real", "gan", "rnagan"}


def _tag_with_metadata(data: bytes, source: str) -> bytes:
    exif = Image.Exif()
    exif[0x010E] = f"generator: {source} checkpoint"  # ImageDescription
    tagged = io.BytesIO()
    Image.open(io.BytesIO(data)).save(tagged, format="JPEG", quality=90, exif=exif.tobytes(),
                                      comment=f"source={source}".encode())
    return tagged.getvalue()


def test_image_metadata_never_reaches_the_browser(client, full_catalog):
    # Every tile file carries EXIF and a comment naming its source, as a careless encoder might write.
    for tile in full_catalog.tiles:
        tagged = _tag_with_metadata(tile.image.read(), tile.source)
        tile.image.close()
        default_storage.delete(tile.image.name)
        default_storage.save(tile.image.name, ContentFile(tagged))
    game = services.game_start(session_key="s")
    for played in game.rounds.select_related("tile").order_by("position"):
        served = client.get(f"/play/{game.token}/tile/{played.position}.jpg").content
        _answer(client, game, played.position)
        stored = played.tile.image.read()
        played.tile.image.close()
        assert f"source={played.source}".encode() in stored
        assert b"source=" not in served and b"generator" not in served and b"Exif" not in served
        assert len(served) == served_size()
        # Only metadata went: the picture decodes to the same pixels.
        assert Image.open(io.BytesIO(served)).tobytes() == Image.open(io.BytesIO(stored)).tobytes()


def test_answers_by_fetch_get_the_verdict_and_the_next_tile_only_after_they_are_stored(client, full_catalog):
    game = _start(client)
    source = game.rounds.get(position=1).source
    reply = _answer(client, game, 1, "synthetic", "unsure", **JSON).json()
    assert reply["correct"] == (source != "real")
    assert reply["truth"] == ("real" if source == "real" else "synthetic")
    assert reply["next"] == {"position": 2, "image": f"/play/{game.token}/tile/2.jpg", "alt": "Tissue tile 2 of 20"}
    assert reply["results"] is None
    stored = game.rounds.get(position=1)
    assert (stored.answer, stored.confidence, stored.correct) == ("synthetic", "unsure", reply["correct"])


def test_answering_twice_or_out_of_order_is_refused(client, full_catalog):
    game = _start(client)
    assert _answer(client, game, 1, **JSON).status_code == 200
    twice = _answer(client, game, 1, "synthetic", **JSON)
    assert twice.status_code == 409 and "cannot be changed" in twice.json()["error"]
    skipped = _answer(client, game, 3, **JSON)
    assert skipped.status_code == 409 and "in order" in skipped.json()["error"]
    page = _answer(client, game, 1)
    assert page.status_code == 409 and "Answer not accepted" in page.content.decode()
    assert _answer(client, game, 2, "maybe", **JSON).status_code == 400


def test_malformed_answers_are_refused_readably_and_store_nothing(client, full_catalog):
    game = _start(client)
    url = f"/play/{game.token}/answer"
    for body in ({"position": "one", "answer": "real", "confidence": "sure"},
                 {"answer": "real", "confidence": "sure"},
                 {"position": "1", "answer": "real"},
                 {"position": "1", "answer": "real", "confidence": "certain"}):
        reply = client.post(url, body, **JSON)
        assert reply.status_code == 400 and reply.json()["error"], body
    assert not game.rounds.filter(answered_at__isnull=False).exists()


def test_a_game_played_without_javascript_goes_round_by_round_to_the_results(client, full_catalog, settings):
    settings.RNAGAN_QUIZ_ROUNDS = 4
    game = _start(client)
    for position in range(1, 5):
        page = client.get(f"/play/{game.token}/").content.decode()
        assert f'name="position" value="{position}"' in page
        if position > 1:
            assert f"Tile {position - 1}:" in page  # feedback on the previous, already stored answer
        response = _answer(client, game, position)
        assert response.status_code == 302
    assert response["Location"] == f"/play/{game.token}/results"
    game.refresh_from_db()
    html = client.get(f"/play/{game.token}/results").content.decode()
    assert f"{game.score} / 4 correct" in html
    assert client.get(f"/play/{game.token}/")["Location"] == f"/play/{game.token}/results"


def test_an_expired_game_shows_an_expiry_page_and_takes_no_answers(client, full_catalog):
    game = _start(client)
    Game.objects.filter(pk=game.pk).update(expires=timezone.now() - timedelta(minutes=1))
    page = client.get(f"/play/{game.token}/")
    assert page.status_code == 410 and "expired" in page.content.decode()
    assert _answer(client, game, 1, **JSON).status_code == 410
    assert client.get(f"/play/{game.token}/results")["Location"] == f"/play/{game.token}/"


def test_results_break_the_score_down_and_reveal_every_tile(client, full_catalog, settings):
    settings.RNAGAN_QUIZ_ROUNDS = 8
    game = _start(client)
    play_through(game)  # always "real": every real tile right, every synthetic one wrong
    dealt = Counter(game.rounds.values_list("source", flat=True))
    html = client.get(f"/play/{game.token}/results").content.decode()
    assert f"{dealt['real']} / 8 correct" in html
    for label, source, right in (("Real tiles recognised", "real", dealt["real"]),
                                 ("GAN tiles detected", "gan", 0), ("RNA-GAN tiles detected", "rnagan", 0)):
        shown = re.search(rf"{label}</span><span class=\"tally-value\">(\d+) / (\d+)", html)
        assert (shown and (int(shown[1]), int(shown[2]))) == ((right, dealt[source]) if dealt[source] else None)
    assert html.count('class="reveal-item') == 8
    assert "Checkerboard patterns" in html and "Implausible nuclei" in html and "Smeared borders" in html
    assert f"/r/{game.share_token}/" in html


def test_the_shared_page_is_read_only_and_never_shows_the_play_token(client, full_catalog, settings):
    settings.RNAGAN_QUIZ_ROUNDS = 4
    game = _start(client, nickname="<script>x()</script>")
    assert client.get(f"/r/{game.share_token}/").status_code == 404  # not finished yet
    play_through(game)
    viewer = Client()
    page = viewer.get(f"/r/{game.share_token}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert game.token not in html and "<script>x()</script>" not in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert viewer.get(f"/r/{game.share_token}/tile/1.jpg").status_code == 200
    assert viewer.get(f"/r/{game.token}/").status_code == 404
    assert viewer.post(f"/r/{game.share_token}/", {"position": 1}).status_code == 405


def test_the_leaderboard_lists_finished_games_with_escaped_nicknames(client, full_catalog, settings):
    settings.RNAGAN_QUIZ_ROUNDS = 4
    game = _start(client, nickname="<b>Ada</b>")
    play_through(game)
    html = client.get("/leaderboard/").content.decode()
    assert "&lt;b&gt;Ada&lt;/b&gt;" in html and "<b>Ada</b>" not in html
    assert "1 game finished" in html
