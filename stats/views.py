"""The statistics pages and downloads: thin views over the cached results and the exporters."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from stats import exports, presenting, selectors, services, tasks
from studies.models import Study


def _section(study: Study) -> dict:
    cached = selectors.study_stats_cached(study=study)
    rows = presenting.agreement_rows(cached["result"]) if cached and cached.get("result") else []
    return {"study": study, "stats": cached, "agreement_rows": rows}


@staff_member_required
def page(request):
    sections = [_section(study) for study in selectors.studies_listed()]
    return render(request, "stats/page.html", {"game": selectors.game_stats_cached(), "studies": sections})


def study(request, name: str):
    """One study's statistics: staff always; anyone once it is closed and published (read-only)."""
    found = get_object_or_404(Study, name=name)
    if not selectors.study_stats_visible(study=found, user=request.user):
        raise Http404("no published statistics here")
    return render(request, "stats/study.html", {"section": _section(found),
                                                "staff": request.user.is_active and request.user.is_staff})


@staff_member_required
@require_POST
def refresh(request):
    transaction.on_commit(lambda: tasks.stats_refresh.apply_async(kwargs={"force": True}))
    messages.info(request, "Recomputing: reload in a moment.")
    return redirect("stats:page")


@staff_member_required
@require_POST
def study_publish(request, name: str):
    found = get_object_or_404(Study, name=name)
    try:
        services.study_stats_publish(study=found, published=request.POST.get("published") == "1")
    except services.StatsError as exc:
        messages.error(request, str(exc))
    return redirect("stats:study", name=found.name)


def _zip_response(handle, name: str) -> FileResponse:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return FileResponse(handle, as_attachment=True, filename=f"rnagan-{name}-{stamp}.zip",
                        content_type="application/zip")


@staff_member_required
def game_export(request):
    return _zip_response(exports.export_zip(exports.export_game, prefix="game"), "game")


def study_export(request, name: str):
    found = get_object_or_404(Study, name=name)
    if not selectors.study_stats_visible(study=found, user=request.user):
        raise Http404("no published statistics here")
    handle = exports.export_zip(lambda folder: exports.export_study(folder, found), prefix="study")
    return _zip_response(handle, f"study-{found.name}")
