"""The staff side: studies, per-rater progress and links, open/close, invitations, best-of curation."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from studies import selectors, services
from studies.models import Study


def _study(name: str) -> Study:
    return get_object_or_404(Study, name=name)


def _stats_url(study: Study) -> str | None:
    # The statistics page belongs to the analysis app; link it when it is installed.
    try:
        return reverse("stats:study", kwargs={"name": study.name})
    except NoReverseMatch:
        return None


@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "studies/staff/dashboard.html", {"studies": selectors.studies_overview()})


@staff_member_required
def study_detail(request: HttpRequest, name: str) -> HttpResponse:
    study = _study(name)
    rows = [
        (p, request.build_absolute_uri(reverse("studies:welcome", kwargs={"token": p.rater.token})))
        for p in selectors.study_progress(study=study)
    ]
    context = {"study": study, "rows": rows, "coverage": selectors.study_coverage(study=study),
               "stats_url": _stats_url(study)}
    return render(request, "studies/staff/study.html", context)


@staff_member_required
@require_POST
def study_status(request: HttpRequest, name: str) -> HttpResponse:
    try:
        services.study_set_status(study=_study(name), status=request.POST.get("status", ""))
    except services.StudyError as refusal:
        messages.error(request, str(refusal))
    return redirect("studies:study_detail", name=name)


@staff_member_required
@require_POST
def study_invite(request: HttpRequest, name: str) -> HttpResponse:
    labels = [line.strip() for line in request.POST.get("labels", "").splitlines() if line.strip()]
    try:
        n = int(request.POST.get("n", "") or len(labels))
        raters = services.study_invite(study=_study(name), n=n, labels=labels)
        messages.success(request, f"{len(raters)} rater link(s) created.")
    except ValueError as refusal:
        messages.error(request, str(refusal) if isinstance(refusal, services.StudyError) else "How many raters?")
    return redirect("studies:study_detail", name=name)


@staff_member_required
@require_POST
def rater_revoke(request: HttpRequest, name: str, code: str) -> HttpResponse:
    rater = get_object_or_404(_study(name).raters, code=code)
    services.rater_revoke(rater=rater)
    messages.success(request, f"{code}'s link is revoked.")
    return redirect("studies:study_detail", name=name)


@staff_member_required
def curate(request: HttpRequest, name: str) -> HttpResponse:
    study = _study(name)
    if study.selection != Study.Selection.BEST_OF:
        raise Http404("Only a best-of study is curated.")
    error = ""
    if request.method == "POST":
        try:
            services.study_curate(study=study, picked_codes=request.POST.getlist("pick"), by=request.user)
            messages.success(request, "Selection recorded; you can invite raters now.")
            return redirect("studies:study_detail", name=name)
        except services.StudyError as refusal:
            error = str(refusal)
    context = {"study": study, "cells": selectors.study_cells(study=study), "error": error,
               "picked": set(request.POST.getlist("pick"))}
    return render(request, "studies/staff/curate.html", context, status=400 if error else 200)


@staff_member_required
def candidate_tile(request: HttpRequest, name: str, code: str) -> HttpResponse:
    tile = get_object_or_404(_study(name).tiles.select_related("tile"), code=code).tile
    with tile.image.open("rb") as handle:
        response = HttpResponse(handle.read(), content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"
    return response
