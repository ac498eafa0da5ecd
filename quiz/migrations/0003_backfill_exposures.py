"""Tiles dealt before exposures were stored start from the games they were already dealt to.

`generation.0002_blinding` added `Tile.exposures` with default 0, so a deployed catalog would otherwise
give every tile a fresh `RNAGAN_TILE_MAX_EXPOSURES` games. Audit games never count (as in game_start).
"""

from django.db import migrations
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce


def backfill(apps, schema_editor):
    Tile = apps.get_model("generation", "Tile")
    GameRound = apps.get_model("quiz", "GameRound")
    dealt = (GameRound.objects.filter(tile=OuterRef("pk"), game__audit=False).order_by()
             .values("tile").annotate(n=Count("pk")).values("n"))
    Tile.objects.update(exposures=Coalesce(Subquery(dealt), 0))


class Migration(migrations.Migration):
    dependencies = [("quiz", "0002_blinding"), ("generation", "0002_blinding")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
