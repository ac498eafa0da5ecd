"""`rnagan tile-slides`, `tiles-info`, `tiles-export`: slides into the LMDB tile store and back out."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from training.cli import options
from training.cli.rnagan import CommandError
from training.data.tiling_params import TilingParams

# Library modules are imported inside the commands: `rnagan --help` imports every command module, and
# the library pulls in numpy and torch (start-up time).

DEFAULTS = TilingParams()


def run_tile_slides(args: argparse.Namespace) -> int:
    from training.data.slides import find_slides
    from training.data.tiling import read_tissue_labels, tile_slides, tissue_for_slide

    try:
        params = TilingParams(
            tile_size=args.tile_size, mpp=args.mpp, max_background=args.max_background, max_tiles=args.max_tiles,
            min_contrast=args.min_contrast, quality=args.quality, seed=args.seed, assume_mpp=args.assume_mpp,
            mpp_tolerance=args.mpp_tolerance, threshold_min=args.otsu_range[0], threshold_max=args.otsu_range[1],
            reader=args.reader,
        )
        slides = find_slides(args.slides)
    except (ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from None
    if not slides:
        raise CommandError(f"no slides found in {' '.join(args.slides)}")
    tissue_of = None
    if args.attributes:
        try:
            labels = read_tissue_labels(args.attributes, args.tissue_column)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        tissue_of = lambda slide_id: tissue_for_slide(slide_id, labels)  # noqa: E731
    elif args.tissue:
        tissue_of = lambda slide_id: args.tissue  # noqa: E731
    if args.workers < 1:
        raise CommandError("--workers must be at least 1")
    print(f"tiling {len(slides)} slide(s) into {args.out} with {args.workers} worker(s)", file=sys.stderr)
    try:
        summary = tile_slides(slides, args.out, params, workers=args.workers, tissue_of=tissue_of,
                              progress=not args.no_progress)
    except (ValueError, FileExistsError) as exc:
        raise CommandError(str(exc)) from None
    print(summary.describe())
    if tissue_of is not None:
        missing = [s for s in summary.tiled if tissue_of(s) is None]
        if missing:
            print(f"warning: no tissue label for {len(missing)} slide(s): {', '.join(missing[:5])}", file=sys.stderr)
    return 1 if summary.failed else 0


def _open_store(path: str):
    from training.data.tile_store import TileStore

    try:
        return TileStore(path)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None


def run_tiles_info(args: argparse.Namespace) -> int:
    with _open_store(args.path) as store:
        records = store.slides()
    tissues: dict[str, dict[str, int]] = defaultdict(lambda: {"slides": 0, "tiles": 0})
    for record in records.values():
        if record["status"] == "complete":
            entry = tissues[record.get("tissue") or "(none)"]
            entry["slides"] += 1
            entry["tiles"] += record["count"]
    status_counts: dict[str, int] = defaultdict(int)
    for record in records.values():
        status_counts[record["status"]] += 1
    if args.json:
        slides = {s: {k: r.get(k) for k in ("tissue", "status", "count", "error", "tile_mpp", "level", "reader")}
                  for s, r in sorted(records.items())}
        print(json.dumps({"slides": slides, "tissues": dict(sorted(tissues.items())),
                          "status": dict(sorted(status_counts.items())),
                          "tiles": sum(t["tiles"] for t in tissues.values())}, indent=2))
        return 0
    width = max([len(s) for s in records] + [8])
    print(f"{'slide':<{width}}  {'tissue':<16} {'status':<9} {'tiles':>7}")
    for slide_id, record in sorted(records.items()):
        note = f"  {record['error']}" if record.get("error") else ""
        print(f"{slide_id:<{width}}  {str(record.get('tissue') or '-'):<16} {record['status']:<9} "
              f"{record.get('count', 0):>7}{note}")
    print()
    for tissue, entry in sorted(tissues.items()):
        print(f"{tissue}: {entry['slides']} slide(s), {entry['tiles']:,} tiles")
    print("slides by status: " + ", ".join(f"{k} {v}" for k, v in sorted(status_counts.items())))
    return 0


def run_tiles_export(args: argparse.Namespace) -> int:
    from PIL import Image

    from training.data.tile_store import decode_jpeg
    from training.utils.io import atomic_path

    out = Path(args.out)
    written = 0
    with _open_store(args.path) as store:
        records = store.slides()
        if args.slide and args.slide not in records:
            raise CommandError(f"{args.path}: no slide {args.slide} in the tile store")
        for slide_id in [args.slide] if args.slide else sorted(records):
            for key in store.keys(slide_id):
                if args.limit is not None and written >= args.limit:
                    break
                x_y = key.rsplit("/", 1)[1]
                with atomic_path(out / slide_id / f"{x_y}.png") as tmp:
                    Image.fromarray(decode_jpeg(store.jpeg(key))).save(tmp, format="PNG")
                written += 1
    print(f"wrote {written} tile(s) to {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    tile = subparsers.add_parser(
        "tile-slides", help="cut whole-slide images into tissue tiles in an LMDB tile store",
        description="Tile slides at a fixed µm/px into one LMDB store: Otsu tissue mask on HSV saturation, "
                    "non-overlapping tiles with little background and enough contrast, JPEG. Resumable: "
                    "complete slides with the same options are skipped, partial ones redone. Exits 1 if any "
                    "slide failed (the others are still tiled).")
    tile.add_argument("slides", nargs="+", metavar="SLIDE_OR_DIR",
                      help="slide files (.svs, .tif(f), .ndpi, .mrxs, … anything OpenSlide opens) or folders to scan")
    tile.add_argument("--out", required=True, help="the tile store (an LMDB folder; created or resumed)")
    tile.add_argument("--workers", type=options.integer(1, 1024), default=1, help="slides tiled in parallel processes (default 1)")
    tile.add_argument("--tile-size", type=options.integer(16, 8192), default=DEFAULTS.tile_size, help="tile side in px (default %(default)s)")
    tile.add_argument("--mpp", type=options.POSITIVE, default=DEFAULTS.mpp, help="µm per tile px (default %(default)s, i.e. 20×)")
    tile.add_argument("--max-background", type=options.FRACTION, default=DEFAULTS.max_background,
                      help="largest background share of a tile's footprint in the mask (default %(default)s)")
    tile.add_argument("--max-tiles", type=options.COUNT_OR_ZERO, default=DEFAULTS.max_tiles,
                      help="most tiles per slide, a seeded random choice (default %(default)s; 0 for all)")
    tile.add_argument("--min-contrast", type=options.real(0, 255), default=DEFAULTS.min_contrast,
                      help="drop tiles whose std of grey (0–255) is below this (default %(default)s; "
                           "glass ≈ 1, H&E tissue 40–90)")
    tile.add_argument("--quality", type=options.integer(1, 100), default=DEFAULTS.quality, help="JPEG quality (default %(default)s)")
    tile.add_argument("--seed", type=options.SEED, default=DEFAULTS.seed, help="seed of the per-slide tile choice (default %(default)s)")
    tile.add_argument("--assume-mpp", type=options.POSITIVE, help="µm/px of level 0 for slides without resolution metadata")
    tile.add_argument("--mpp-tolerance", type=options.FRACTION, default=DEFAULTS.mpp_tolerance,
                      help="read a level as is when its µm/px is within this share of --mpp (default %(default)s)")
    tile.add_argument("--otsu-range", type=options.integer(0, 255), nargs=2, default=(DEFAULTS.threshold_min, DEFAULTS.threshold_max),
                      metavar=("LO", "HI"), help="clamp Otsu's saturation threshold (0–255) into [LO, HI] "
                      f"(default {DEFAULTS.threshold_min} {DEFAULTS.threshold_max})")
    tile.add_argument("--reader", choices=("auto", "openslide"), default="auto",
                      help="auto decodes tiled TIFF levels directly when that matches OpenSlide exactly")
    labels = tile.add_mutually_exclusive_group()
    labels.add_argument("--attributes", help="GTEx SampleAttributesDS.txt: tissue label per slide")
    labels.add_argument("--tissue", help="tissue label for every slide")
    tile.add_argument("--tissue-column", default="SMTSD",
                      help="attributes column with the tissue (default SMTSD, as prepare-expression uses)")
    tile.add_argument("--no-progress", action="store_true", help="no progress bar")
    tile.set_defaults(func=run_tile_slides)

    info = subparsers.add_parser("tiles-info", help="tiles per slide and tissue in a tile store")
    info.add_argument("path", help="the tile store")
    info.add_argument("--json", action="store_true", help="print as JSON")
    info.set_defaults(func=run_tiles_info)

    export = subparsers.add_parser("tiles-export", help="write tiles of a tile store as PNG files")
    export.add_argument("path", help="the tile store")
    export.add_argument("--out", required=True, help="folder for OUT/SLIDE_ID/X_Y.png")
    export.add_argument("--limit", type=options.COUNT, help="at most this many tiles")
    export.add_argument("--slide", help="only this slide")
    export.set_defaults(func=run_tiles_export)
