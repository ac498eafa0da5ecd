from django.core.management.base import CommandError

from config.commands import ProjectCommand
from generation.imports import TileSourceError, real_tiles_import_folder, real_tiles_import_lmdb


class Command(ProjectCommand):
    help = "Import real tiles (from a tile LMDB or an image folder) into the catalog through the shared encoder."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--lmdb", help="a tile store written by `rnagan tile-slides`")
        source.add_argument("--folder", help="a folder of PNG/JPEG/TIFF tiles")
        parser.add_argument("--tissue", required=True, help="tissue label, e.g. 'Lung' or 'Brain - Cortex'")
        parser.add_argument("--limit", type=int, help="import at most this many tiles")
        parser.add_argument("--exclude-slide", action="append", default=[], metavar="SLIDE",
                            help="(--lmdb) leave this slide out, e.g. one kept for /conditioning/ (repeatable)")

    def handle(self, *args, lmdb=None, folder=None, tissue: str, limit=None, exclude_slide=(), **options):
        if limit is not None and limit < 1:
            raise CommandError(f"--limit {limit}: give at least 1 (or leave it out for every tile)")
        if not tissue.strip():
            raise CommandError("--tissue is empty: name the tissue, e.g. 'Lung'")
        if exclude_slide and not lmdb:
            raise CommandError("--exclude-slide names slides of a tile store: use it with --lmdb")
        try:
            if lmdb:
                added = real_tiles_import_lmdb(path=lmdb, tissue=tissue, limit=limit, exclude_slides=set(exclude_slide))
            else:
                added = real_tiles_import_folder(folder=folder, tissue=tissue, limit=limit)
        except (TileSourceError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"imported {added} new real {tissue} tiles"))
