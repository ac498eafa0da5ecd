"""The rater's side: welcome, one item per page, finish, debrief. Thin: parse, call a service, render.

Everything here is blinded: a page never depends on an item's source (the same template, the same
alt text, an opaque per-item image URL), and an unknown, revoked or foreign token is a plain 404.
"""

from __future__ import annotations

from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe
from markdown_it import MarkdownIt

from generation.serving import blinded_tile_view_response
from studies import selectors, services
from studies.models import COMMENT_MAX_LENGTH, Rater

COMMENT_MAX_LENGTH_TEXT = str(COMMENT_MAX_LENGTH)
QUALITY_LABELS = {1: "very bad", 2: "bad", 3: "fair", 4: "good", 5: "very good"}
RESERVED_KEYS = set("YNZ12345")
_markdown = MarkdownIt("commonmark", {"html": False})  # raw HTML in a cover text is shown as text


def _rater_or_404(token: str) -> Rater:
    rater = selectors.rater_by_token(token=token)
    if rater is None:
        raise Http404("No such link.")
    return rater


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def _closed(request: HttpRequest, rater: Rater) -> HttpResponse:
    return _no_store(render(request, "studies/closed.html", {"rater": rater}))


def _resume(rater: Rater) -> HttpResponse:
    if rater.finished_at is not None:
        return redirect("studies:debrief", token=rater.token)
    if rater.all_answered:
        return redirect("studies:finish", token=rater.token)
    return redirect("studies:item", token=rater.token, position=rater.next_position)


def tissue_keys(tissues: list[str]) -> list[tuple[str, str]]:
    """(key letter, tissue): the first letter of each name not taken already nor used by another question."""
    taken = set(RESERVED_KEYS)
    keyed = []
    for tissue in tissues:
        letters = [c.upper() for c in tissue if c.isalpha()] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
        key = next((c for c in letters if c not in taken), "")  # past 18 tissues, no key: click or Tab
        taken.add(key)
        keyed.append((key, tissue))
    return keyed


@require_http_methods(["GET", "HEAD", "POST"])
def welcome(request: HttpRequest, token: str) -> HttpResponse:
    rater = _rater_or_404(token)
    if not rater.study.is_open:
        return _closed(request, rater)
    if request.method == "POST":
        years_raw = request.POST.get("years_in_practice", "").strip()
        specialty = request.POST.get("specialty", "")
        error = ""
        try:
            years = int(years_raw) if years_raw else None
            services.rater_profile_save(rater=rater, specialty=specialty, years_in_practice=years)
        except ValueError as refusal:  # StudyError is a ValueError, so is int("x")
            error = str(refusal) if isinstance(refusal, services.StudyError) else "years in practice: a whole number"
        if not error:
            rater.refresh_from_db()
            return _resume(rater)
        return _welcome_page(request, rater, error=error, values=request.POST, status=400)
    if rater.profile_done:
        return _resume(rater)
    return _welcome_page(request, rater)


def _welcome_page(request, rater, *, error="", values=None, status=200) -> HttpResponse:
    context = {"rater": rater, "cover": _markdown.render(rater.study.cover_text), "error": error,
               "values": values or {}}
    return _no_store(render(request, "studies/welcome.html", context, status=status))


@require_http_methods(["GET", "HEAD", "POST"])
def item(request: HttpRequest, token: str, position: int) -> HttpResponse:
    if request.method == "POST":
        return _answer(request, token, position)
    found = selectors.item_page(token=token, position=position)  # the page's one query
    if found is None:
        rater = _rater_or_404(token)
        if not rater.study.is_open:
            return _closed(request, rater)
        if rater.finished_at is not None:
            return redirect("studies:debrief", token=token)
        raise Http404("No such item.")
    rater, shown = found
    if not rater.study_open:
        return _closed(request, rater)
    if rater.finished_at is not None:
        return redirect("studies:debrief", token=token)
    if position > rater.next_position:
        return redirect("studies:item", token=token, position=rater.next_position)
    services.item_mark_served(item=shown)
    rating = shown.rating
    values = {}
    if rating is not None:
        values = {"tissue": rating.tissue_answer, "quality": str(rating.quality),
                  "artifacts": "yes" if rating.artifacts else "no", "comment": rating.comment}
    return _item_page(request, rater, shown, values=values)


def _item_page(request, rater, shown, *, values, errors=None, status=200) -> HttpResponse:
    # Every number reaches the template as a string and every choice arrives with its `checked` flag:
    # the item page is most of a rater's load, and Django's per-number localisation and template
    # comparisons were over a third of its rendering.
    position, n = shown.position, rater.n_items
    answered = min(rater.next_position - 1, n)
    item_url = reverse("studies:item", kwargs={"token": rater.token, "position": position})
    context = {
        "position": str(position), "n": str(n), "answered": str(answered),
        "action_url": item_url,
        "previous_url": item_url.replace(f"/item/{position}/", f"/item/{position - 1}/") if position > 1 else "",
        "tile_url": reverse("studies:tile", kwargs={"token": rater.token, "key": shown.key}),
        "tile_width": str(rater.tile_width), "tile_height": str(rater.tile_height),
        "tissues": [(key, tissue, values.get("tissue") == tissue) for key, tissue in tissue_keys(rater.tissues)],
        "qualities": [(str(v), label, values.get("quality") == str(v)) for v, label in QUALITY_LABELS.items()],
        "artifacts": [("yes", "Y", "Yes", values.get("artifacts") == "yes"),
                      ("no", "N", "No", values.get("artifacts") == "no")],
        "comment": values.get("comment", ""), "errors": errors or {}, "comment_max": COMMENT_MAX_LENGTH_TEXT,
    }
    return _no_store(render(request, "studies/item.html", context, status=status))


def _answer(request: HttpRequest, token: str, position: int) -> HttpResponse:
    # Straight to the service, which finds and locks the rater itself: the busiest path reads the rater once.
    post = request.POST
    try:
        active = float(post.get("active_seconds", ""))
    except ValueError:
        active = None
    try:
        saved = services.rating_submit(token=token, position=position, tissue=post.get("tissue", ""),
                                       quality=post.get("quality"), artifacts=post.get("artifacts", ""),
                                       comment=post.get("comment", ""), active_seconds=active)
    except services.AnswerInvalid as invalid:
        found = selectors.item_page(token=token, position=position)
        if found is None:
            raise Http404("No such item.") from invalid
        return _item_page(request, *found, values=post, errors=invalid.errors, status=400)
    except services.NotFound as refused:
        raise Http404("No such item.") from refused
    except services.Locked:
        rater = _rater_or_404(token)
        return _closed(request, rater) if not rater.study.is_open else _resume(rater)
    following = saved.position + 1
    if following <= min(saved.next_position, saved.n_items):
        return redirect("studies:item", token=token, position=following)
    return redirect("studies:finish", token=token)


@require_safe
def tile(request: HttpRequest, token: str, key: str) -> HttpResponse:
    path = selectors.item_tile_path(token=token, key=key)
    if path is None:
        raise Http404("No such image.")
    # Blinded like the quiz's tiles (generation.serving): one length, fixed headers, a tag from the key.
    return blinded_tile_view_response(read=Path(path).read_bytes, request=request,
                                      etag_key=f"study-item:{key}", name=str(path))


@require_http_methods(["GET", "HEAD", "POST"])
def finish(request: HttpRequest, token: str) -> HttpResponse:
    rater = _rater_or_404(token)
    if not rater.study.is_open:
        return _closed(request, rater)
    if rater.finished_at is not None or not rater.all_answered:
        return _resume(rater)
    if request.method == "POST":
        try:
            services.rater_finish(token=token)
        except services.StudyError:
            rater.refresh_from_db()
            return _resume(rater)
        return redirect("studies:debrief", token=token)
    return _no_store(render(request, "studies/finish.html", {"rater": rater, "n": rater.n_items}))


@require_http_methods(["GET", "HEAD", "POST"])
def debrief(request: HttpRequest, token: str) -> HttpResponse:
    rater = _rater_or_404(token)
    if rater.finished_at is None:
        return _closed(request, rater) if not rater.study.is_open else _resume(rater)
    errors: dict[str, str] = {}
    if request.method == "POST" and rater.study.debrief and rater.debriefed_at is None:
        try:
            services.rater_debrief_save(rater=rater, suspected=request.POST.get("suspected", ""),
                                        giveaway=request.POST.get("giveaway", ""))
            return redirect("studies:debrief", token=token)
        except services.AnswerInvalid as invalid:
            errors = invalid.errors
    context = {"rater": rater, "errors": errors, "values": request.POST, "comment_max": COMMENT_MAX_LENGTH,
               "suspected_choices": services.Rater.Suspected.choices}
    return _no_store(render(request, "studies/debrief.html", context, status=400 if errors else 200))
