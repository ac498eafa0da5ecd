"""Thin views: parse the request, call one service or selector, format the answer."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.db import connection
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from generation.serving import blinded_tile_view_response
from generation.showcase import showcase_file, showcase_read
from quiz import selectors, services
from quiz.audit import audit_requested
from quiz.converters import position_from_form
from quiz.forms import StartForm
from quiz.models import Game
from quiz.pool import pool_status
from quiz.ratelimit import rate_limited, wants_json


def home(request: HttpRequest) -> HttpResponse:
    form = StartForm(initial={"nickname": request.session.get("quiz_nickname", "")})
    return _home(request, form)


def _home(request: HttpRequest, form: StartForm, *, error: str = "", status: int = 200) -> HttpResponse:
    conf = selectors.quiz_settings()
    context = {"form": form, "conf": conf, "pool": pool_status(n=conf.rounds), "error": error}
    return render(request, "quiz/home.html", context, status=status)


@require_POST
@rate_limited("start")
def start(request: HttpRequest) -> HttpResponse:
    form = StartForm(request.POST)
    if not form.is_valid():
        return _home(request, form, status=400)
    nickname = form.cleaned_data["nickname"]
    # Writing to the session creates it, so the game is tied to this browser's cookie.
    request.session["quiz_nickname"] = nickname
    if request.session.session_key is None:
        request.session.save()
    try:
        game = services.game_start(session_key=request.session.session_key, nickname=nickname,
                                   audit=audit_requested(request.POST.get("audit", "")))
    except (services.PoolTooSmall, services.PoolChanged) as refusal:
        return _home(request, form, error=str(refusal), status=refusal.status)
    return redirect("quiz:play", token=game.token)


def _tile_url(game: Game, position: int, *, shared: bool = False) -> str:
    if shared:
        return reverse("quiz:shared_tile", kwargs={"share_token": game.share_token, "position": position})
    return reverse("quiz:tile", kwargs={"token": game.token, "position": position})


def _alt(position: int, n: int) -> str:
    return f"Tissue tile {position} of {n}"


def _state_or_404(token: str) -> selectors.PlayState:
    state = selectors.play_state(token=token)
    if state is None:
        raise Http404("There is no such game.")
    if state.game.completed is None and state.answered == state.game.n:
        services.game_finish(game=state.game)
    return state


@require_safe
def play(request: HttpRequest, token: str) -> HttpResponse:
    state = _state_or_404(token)
    game = state.game
    if game.completed is not None:
        return redirect("quiz:results", token=token)
    if state.expired:
        return render(request, "quiz/expired.html", status=410)
    current = state.current
    context = {
        "game": game,
        "round": current,
        "tile_url": _tile_url(game, current.position),
        "alt": _alt(current.position, game.n),
        "feedback": state.last_answered,
        "answered": state.answered,
        "score": state.score,
        "progress_percent": round(100 * state.answered / game.n),
    }
    response = render(request, "quiz/play.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@rate_limited("answer")
def answer(request: HttpRequest, token: str) -> HttpResponse:
    # No Form here: quiz_answer_submit validates the answer and confidence itself, and a Form's
    # per-request deep copy of its fields was a fifth of this, the busiest view's, CPU.
    position = position_from_form(request.POST.get("position"))
    if position is None:
        return _refused(request, token, "That answer names no tile.", status=400)
    try:
        receipt = services.quiz_answer_submit(game_token=token, position=position,
                                              answer=request.POST.get("answer", ""),
                                              confidence=request.POST.get("confidence", ""))
    except services.QuizError as refusal:
        return _refused(request, token, str(refusal), status=refusal.status)
    if not wants_json(request):
        return redirect("quiz:results" if receipt.completed else "quiz:play", token=token)
    following = receipt.position + 1
    return JsonResponse({
        "position": receipt.position,
        "n": receipt.n,
        "correct": receipt.correct,
        "truth": "real" if receipt.source == selectors.REAL else "synthetic",
        "generator": selectors.SOURCE_LABELS[receipt.source],
        "tissue": receipt.tissue,
        "score": receipt.score,
        "next": None if receipt.completed else {
            "position": following,
            "image": reverse("quiz:tile", kwargs={"token": token, "position": following}),
            "alt": _alt(following, receipt.n),
        },
        "results": reverse("quiz:results", kwargs={"token": token}) if receipt.completed else None,
    })


def _refused(request: HttpRequest, token: str, message: str, *, status: int) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"error": message}, status=status)
    context = {"message": message, "continue_url": reverse("quiz:play", kwargs={"token": token})}
    return render(request, "quiz/refused.html", context, status=status)


def _tile_response(request: HttpRequest, etag_key: str, **round_key) -> HttpResponse:
    """A round's tile, blinded (generation.serving): one code path, one query, one file read whatever
    its source. The ETag comes from the game's token and the round only."""
    name = selectors.round_image_name(**round_key)
    if name is None:
        raise Http404("No such tile, or not yet.")
    def read() -> bytes:
        with default_storage.open(name, "rb") as handle:
            return handle.read()

    return blinded_tile_view_response(read=read, request=request, etag_key=etag_key, name=name)


@require_safe
def tile(request: HttpRequest, token: str, position: int) -> HttpResponse:
    return _tile_response(request, f"play:{token}:{position}", position=position, token=token)


@require_safe
def shared_tile(request: HttpRequest, share_token: str, position: int) -> HttpResponse:
    return _tile_response(request, f"share:{share_token}:{position}", position=position, share_token=share_token)


def _results_page(request: HttpRequest, game: Game, *, shared: bool) -> HttpResponse:
    results = selectors.game_results(game=game)
    reveal = [(r, _tile_url(game, r.position, shared=shared), _alt(r.position, game.n)) for r in results.rounds]
    context = {
        "results": results,
        "game": game,
        "reveal": reveal,
        "shared": shared,
        "share_url": request.build_absolute_uri(reverse("quiz:shared", kwargs={"share_token": game.share_token})),
        "roc_player": selectors.roc_svg_points(results.roc["points"]),
        "roc_crowd": selectors.roc_svg_points(results.crowd["roc"]["points"]),
        "score_percent": round(100 * results.score / game.n),
    }
    return render(request, "quiz/results.html", context)


@require_safe
def results(request: HttpRequest, token: str) -> HttpResponse:
    state = _state_or_404(token)
    if state.game.completed is None:
        return redirect("quiz:play", token=token)
    return _results_page(request, state.game, shared=False)


@require_safe
def shared(request: HttpRequest, share_token: str) -> HttpResponse:
    game = selectors.game_by_share_token(share_token=share_token)
    if game is None:
        raise Http404("There is no such finished game.")
    return _results_page(request, game, shared=True)


@require_safe
def leaderboard(request: HttpRequest) -> HttpResponse:
    stats = selectors.crowd_stats()
    return render(request, "quiz/leaderboard.html", {
        "stats": stats, "roc_crowd": selectors.roc_svg_points(stats["roc"]["points"]),
    })


@require_safe
def conditioning(request: HttpRequest) -> HttpResponse:
    # Labelled tiles that are never dealt (generation/showcase.py): the page cannot teach the game's answers.
    return render(request, "quiz/conditioning.html", {"showcases": showcase_read(), "conf": selectors.quiz_settings()})


@require_safe
def conditioning_tile(request: HttpRequest, name: str, file: str) -> FileResponse:
    path = showcase_file(name, file)
    if path is None:
        raise Http404("no such showcase tile")
    response = FileResponse(open(path, "rb"), content_type="image/jpeg")
    response["Cache-Control"] = "public, max-age=3600"
    return response


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
