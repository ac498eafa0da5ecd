"""Tile catalog, checkpoints and the Celery workers that pregenerate tiles. Imports training, never quiz."""
