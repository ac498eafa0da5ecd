"""`audit_blinding` plays the site as a script would and measures what it could learn without looking."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from PIL import Image

from generation.models import Tile
from quiz import selectors
from quiz.models import Game

pytestmark = pytest.mark.django_db


@pytest.fixture
def blinded_catalog(catalog):
    """Real and synthetic tiles through the real chains, with content of one kind (so only a leak tells).

    300 distinct files: a 400-tile audit then scores about 300 independent tiles (folds are grouped by
    file), where an AUC's spread under no leak is about 0.03, so 0.6 is a real signal, not chance.
    """
    for source in ("real", "gan", "rnagan"):
        catalog.add(source, "lung", 150 if source == "real" else 75, look="real")
    return catalog


def test_the_audit_passes_a_blinded_catalog_and_leaves_no_trace_in_the_crowd(blinded_catalog, tmp_path, capsys):
    report = tmp_path / "audit.json"
    call_command("audit_blinding", "--n", "400", "--json", str(report), "--threshold", "0.6")
    out = capsys.readouterr().out
    for family in "abcd":
        assert f"({family}) " in out and "N=400" in out and "95% CI" in out
    assert "memorisation exposure" in out
    data = json.loads(report.read_text())
    assert data["passed"] and data["n"] == 400
    assert all(data["families"][f]["auc"] <= 0.6 for f in "abc")
    assert data["families"]["a"]["auc"] == 0.5 and data["families"]["b"]["auc"] == 0.5  # nothing varies
    assert 0 < data["memorisation_exposure"] < 1  # 400 tiles dealt from 300: some were seen before
    assert Game.objects.filter(audit=True).count() == data["games"] == 20
    assert not Game.objects.filter(audit=False).exists()
    assert not Tile.objects.filter(exposures__gt=0).exists()
    assert selectors.crowd_stats_compute()["games"] == 0


def test_the_audit_fails_when_synthetic_files_are_encoded_differently(blinded_catalog, capsys):
    # A careless generation worker: progressive JPEG, another quality.
    for tile in Tile.objects.exclude(source="real"):
        with default_storage.open(tile.image.name, "rb") as handle:
            image = Image.open(io.BytesIO(handle.read())).convert("RGB")
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=85, progressive=True)
        default_storage.delete(tile.image.name)
        default_storage.save(tile.image.name, ContentFile(out.getvalue()))
    with pytest.raises(CommandError, match=r"blinding audit failed: \(b\) AUC 1\.000") as failed:
        call_command("audit_blinding", "--n", "200")
    assert failed.value.returncode == 3  # a finding, not bad input (2)
    assert "FAIL" in capsys.readouterr().out


def test_a_player_cannot_mark_a_game_as_an_audit_game(blinded_catalog, client):
    response = client.post("/play/", {"nickname": "", "audit": "audit"})
    assert response.status_code == 302
    assert Game.objects.get().audit is False
