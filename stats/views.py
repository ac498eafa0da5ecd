"""The staff statistics page and the downloads: thin views over the cached results and the exporters."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.admin.views.decorators import staff_member_required
from django.db import transaction
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from stats import exports, selectors, tasks


@staff_member_required
def page(request):
    return render(request, "stats/page.html", {"game": selectors.game_stats_cached()})


@staff_member_required
@require_POST
def refresh(request):
    transaction.on_commit(lambda: tasks.stats_refresh.apply_async(kwargs={"force": True}))
    return redirect("stats:page")


@staff_member_required
def game_export(request):
    handle = exports.export_zip(exports.export_game, prefix="game")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return FileResponse(handle, as_attachment=True, filename=f"rnagan-game-{stamp}.zip",
                        content_type="application/zip")
