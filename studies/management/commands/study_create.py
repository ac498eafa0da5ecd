"""`python manage.py study_create --name NAME --tissues T... --per-cell K [...]`: draw and freeze a study's tiles."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from studies import selectors, services


class Command(BaseCommand):
    help = "Create a blinded rating study from the active tile catalog."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--tissues", nargs="+", required=True, metavar="TISSUE")
        parser.add_argument("--sources", nargs="+", default=list(services.STUDY_SOURCES), metavar="SOURCE")
        parser.add_argument("--per-cell", type=int, required=True, help="tiles kept per (source, tissue)")
        parser.add_argument("--selection", nargs="+", default=["random"], metavar="METHOD",
                            help="'random', or 'best-of N' (N candidates a cell, picked on the curation page)")
        parser.add_argument("--anchors", type=int, default=0, help="tiles every rater rates (agreement)")
        parser.add_argument("--block-size", type=int, default=None, help="tiles per block besides the anchors; "
                            "default: one block, every rater rates every tile")
        parser.add_argument("--min-raters", type=int, default=1, help="ratings each tile should reach")
        parser.add_argument("--repeats", type=int, default=0, help="hidden repeats per rater (test–retest)")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--cover-file", default=None, help="a Markdown file with the raters' cover text")
        parser.add_argument("--no-debrief", action="store_true")

    def handle(self, *args, name, tissues, sources, per_cell, selection, anchors, block_size, min_raters, repeats,
               seed, cover_file, no_debrief, **options):
        method, candidates = _parse_selection(selection)
        cover = None
        if cover_file:
            try:
                with open(cover_file, encoding="utf-8") as handle:
                    cover = handle.read()
            except OSError as error:
                raise CommandError(f"--cover-file {cover_file}: {error.strerror}") from error
            except UnicodeDecodeError as error:
                raise CommandError(f"--cover-file {cover_file}: not UTF-8 text (byte {error.start})") from error
        try:
            study = services.study_create(name=name, tissues=tissues, sources=sources, per_cell=per_cell,
                                          selection=method, candidates=candidates, anchors=anchors,
                                          block_size=block_size, min_raters=min_raters, repeats=repeats, seed=seed,
                                          cover_text=cover, debrief=not no_debrief)
        except services.StudyError as refusal:
            raise CommandError(str(refusal)) from refusal
        n = study.tiles.count()
        if study.ready:
            coverage = selectors.study_coverage(study=study)
            self.stdout.write(f"study {study.name}: {n} tiles, {coverage['blocks']} block(s); invite "
                              f"{coverage['raters_needed']} raters for {study.min_raters} rating(s) a tile")
        else:
            self.stdout.write(f"study {study.name}: {n} candidates drawn; pick {study.per_cell} a cell at "
                              f"/studies/{study.name}/curate before inviting raters")


def _parse_selection(words: list[str]) -> tuple[str, int | None]:
    if words == ["random"]:
        return "random", None
    if len(words) == 2 and words[0] == "best-of" and words[1].isdigit():
        return "best-of", int(words[1])
    raise CommandError(f"--selection: 'random' or 'best-of N', not {' '.join(words)!r}")
