"""Writes for the rating study: creating and curating studies, inviting raters, serving and rating items.

Every write a rater makes locks that rater's row first, so a rater's saves run one at a time however
many tabs or double clicks send them, and the database's unique constraints back that up.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from generation.models import Tile
from studies import design, queries
from studies.models import COMMENT_MAX_LENGTH, QUALITY_RANGE, Item, Rater, Study, StudyTile

STUDY_SOURCES = ("real", "gan", "rnagan")
MAX_ACTIVE_SECONDS = 24 * 3600.0
MAX_INVITES = 1000
# PostgreSQL's text cannot hold NUL; a pasted one is the writer's to remove, not a server error.
NUL = "\x00"
NUL_MESSAGE = "Remove the invisible NUL character."
LABEL_MAX_LENGTH = 100


class StudyError(ValueError):
    """A refusal the researcher or rater should read (never a traceback)."""


class NotFound(StudyError):
    """The rater, item or study is not there for this token: a view answers 404, so tokens cannot be probed."""


class Locked(StudyError):
    """The rater has finished or the study is closed: ratings can no longer change."""


class AnswerInvalid(StudyError):
    """Bad answers, field by field (`errors`): the form shows each beside its field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# ------------------------------------------------------------------------------------------- the study

def _config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _expression_origin(tile: Tile) -> str:
    return ":".join(part for part in (tile.expression_cohort, tile.expression_sample) if part)


def study_create(*, name: str, tissues: Sequence[str], sources: Sequence[str] = STUDY_SOURCES, per_cell: int,
                 selection: str = Study.Selection.RANDOM, candidates: int | None = None, anchors: int = 0,
                 block_size: int | None = None, min_raters: int = 1, repeats: int = 0, seed: int | None = None,
                 cover_text: str | None = None, debrief: bool = True, created_by=None) -> Study:
    """Draw the study's tiles from the active catalog and freeze them; a random draw is designed at once.

    `random` keeps `per_cell` tiles per (source, tissue); `best-of` draws `candidates` per cell for a
    curator to pick `per_cell` from (`study_curate`).
    """
    tissues, sources = list(tissues), list(sources)
    if any(NUL in text for text in (name, cover_text or "", *tissues)):
        raise StudyError("the name, tissues and cover text must not contain a NUL character")
    if not tissues or len(set(tissues)) != len(tissues):
        raise StudyError("--tissues: name each tissue once, at least one")
    if not sources or len(set(sources)) != len(sources) or set(sources) - set(Tile.Source.values):
        raise StudyError(f"--sources: each of {', '.join(Tile.Source.values)} at most once, at least one")
    if per_cell < 1:
        raise StudyError("--per-cell must be at least 1")
    if selection == Study.Selection.RANDOM:
        if candidates is not None:
            raise StudyError("a random draw takes no candidate count (that is best-of N)")
    elif selection == Study.Selection.BEST_OF:
        if candidates is None or candidates < per_cell:
            raise StudyError(f"best-of N needs N ≥ --per-cell ({per_cell})")
    else:
        raise StudyError(f"--selection: random or best-of, not {selection!r}")
    if min_raters < 1 or anchors < 0 or repeats < 0 or (block_size is not None and block_size < 1):
        raise StudyError("--anchors and --repeats must be ≥ 0, --min-raters and --block-size ≥ 1")
    if Study.objects.filter(name=name).exists():
        raise StudyError(f"a study named {name!r} exists already")
    _check_design(tissues=tissues, sources=sources, per_cell=per_cell, anchors=anchors, block_size=block_size,
                  repeats=repeats)

    study = Study(name=name, tissues=tissues, sources=sources, per_cell=per_cell, selection=selection,
                  candidates=candidates, anchors=anchors, block_size=block_size, min_raters=min_raters,
                  repeats=repeats, seed=seed if seed is not None else secrets.randbits(40), debrief=debrief,
                  created_by=created_by)
    if cover_text is not None:
        study.cover_text = cover_text
    try:
        study.full_clean()
    except ValidationError as error:
        fields = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
        raise StudyError(f"study: {fields}") from error

    rng = design.rng_for(study.seed, "draw")
    wanted = per_cell if selection == Study.Selection.RANDOM else candidates
    drawn: list[Tile] = []
    for source in sources:
        for tissue in tissues:
            ids = list(Tile.objects.filter(source=source, tissue=tissue, active=True)
                       .order_by("id").values_list("id", flat=True))
            if len(ids) < wanted:
                raise StudyError(f"cell ({source}, {tissue}): the catalog has {len(ids)} active tiles, "
                                 f"{wanted} needed")
            drawn += list(Tile.objects.filter(id__in=rng.sample(ids, wanted)).select_related("checkpoint"))
    rng.shuffle(drawn)  # codes in a random order: a code says nothing about a tile's cell
    study.tile_width = max(t.width for t in drawn)
    study.tile_height = max(t.height for t in drawn)

    with transaction.atomic():
        try:
            with transaction.atomic():
                study.save()
        except IntegrityError as error:  # the same name created a moment ago elsewhere
            raise StudyError(f"a study named {name!r} exists already") from error
        StudyTile.objects.bulk_create([
            StudyTile(
                study=study, code=f"t{i:04d}", tile=tile, source=tile.source, tissue=tile.tissue,
                checkpoint=tile.checkpoint.name if tile.checkpoint else "",
                generator_config_hash=_config_hash(tile.checkpoint.config) if tile.checkpoint else "",
                expression_origin=_expression_origin(tile), seed=tile.seed,
                included=selection == Study.Selection.RANDOM,
            )
            for i, tile in enumerate(drawn, start=1)
        ])
        if selection == Study.Selection.RANDOM:
            _design(study)
    return study


def _check_design(*, tissues, sources, per_cell, anchors, block_size, repeats) -> None:
    total = len(tissues) * len(sources) * per_cell
    if anchors > total:
        raise StudyError(f"--anchors {anchors}: the study has only {total} tiles")
    rest = total - anchors
    smallest_block = 0 if rest == 0 else (rest // math.ceil(rest / block_size) if block_size else rest)
    if repeats > design.repeats_possible(anchors + smallest_block):
        raise StudyError(
            f"--repeats {repeats}: a rater sees {anchors + smallest_block} distinct tiles, and each repeat "
            f"needs an earlier showing at least {design.REPEAT_MIN_GAP} items before it"
        )


def _design(study: Study) -> None:
    """Mark anchors and blocks on the study's included tiles."""
    tiles = list(study.tiles.filter(included=True))
    cells: dict[design.Cell, list[str]] = defaultdict(list)
    for t in tiles:
        cells[(t.source, t.tissue)].append(t.code)
    anchors = set(design.choose_anchors(cells, study.anchors, design.rng_for(study.seed, "anchors")))
    rest = {cell: [c for c in codes if c not in anchors] for cell, codes in cells.items()}
    blocks = design.split_blocks(rest, study.block_size, design.rng_for(study.seed, "blocks"))
    block_of = {code: b for b, codes in enumerate(blocks) for code in codes}
    for t in tiles:
        t.is_anchor = t.code in anchors
        t.block = block_of.get(t.code)
    StudyTile.objects.bulk_update(tiles, ["is_anchor", "block"])


def study_curate(*, study: Study, picked_codes: Sequence[str], by) -> Study:
    """Record a curator's pick of `per_cell` tiles in every cell of a best-of study, then design it."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if study.selection != Study.Selection.BEST_OF:
            raise StudyError("only a best-of study is curated")
        if study.curated_at is not None:
            raise StudyError(f"{study.name} was curated already, on {study.curated_at:%Y-%m-%d %H:%M} UTC")
        candidates = {t.code: t for t in study.tiles.all()}
        unknown = sorted(set(picked_codes) - set(candidates))
        if unknown:
            raise StudyError(f"not candidates of this study: {', '.join(unknown)}")
        per_cell: dict[design.Cell, int] = defaultdict(int)
        for code in set(picked_codes):
            per_cell[(candidates[code].source, candidates[code].tissue)] += 1
        wrong = [f"({s}, {t}): {per_cell[(s, t)]}" for s in study.sources for t in study.tissues
                 if per_cell[(s, t)] != study.per_cell]
        if wrong:
            raise StudyError(f"pick exactly {study.per_cell} a cell; picked " + "; ".join(wrong))
        now = timezone.now()
        StudyTile.objects.filter(study=study, code__in=set(picked_codes)).update(
            included=True, picked_by=by, picked_at=now)
        study.curated_at, study.curated_by = now, by
        study.save(update_fields=["curated_at", "curated_by"])
        _design(study)
    return study


def study_set_status(*, study: Study, status: str) -> Study:
    if status not in Study.Status.values:
        raise StudyError(f"status: open or closed, not {status!r}")
    Study.objects.filter(pk=study.pk).update(status=status)
    study.status = status
    return study


# ------------------------------------------------------------------------------------------- raters

def study_invite(*, study: Study, n: int, labels: Sequence[str] = ()) -> list[Rater]:
    """Create n raters with their own items (anchors + their block, shuffled, with hidden repeats)."""
    if not 1 <= n <= MAX_INVITES:
        raise StudyError(f"--n: 1 to {MAX_INVITES} raters at a time")
    if len(labels) > n:
        raise StudyError(f"{len(labels)} labels for {n} raters")
    long = [label for label in labels if len(label) > LABEL_MAX_LENGTH or NUL in label]
    if long:
        raise StudyError(f"--label {long[0][:20]!r}…: at most {LABEL_MAX_LENGTH} characters, without NUL")
    with transaction.atomic():
        # The lock serialises invitations, so rater indices (and so blocks) rotate without gaps.
        study = Study.objects.select_for_update().get(pk=study.pk)
        if not study.ready:
            raise StudyError(f"{study.name}: pick the tiles on the curation page first")
        if not study.is_open:
            raise StudyError(f"{study.name} is closed")
        tiles = list(study.tiles.filter(included=True).values_list("id", "is_anchor", "block"))
        anchors = [pk for pk, is_anchor, _ in tiles if is_anchor]
        blocks: dict[int, list[int]] = defaultdict(list)
        for pk, is_anchor, block in tiles:
            if not is_anchor:
                blocks[block].append(pk)
        n_blocks = max(len(blocks), 1)
        first = study.raters.count()
        raters, plans = [], []
        for index in range(first, first + n):
            code = f"R{index + 1:02d}"
            mine = anchors + blocks.get(index % n_blocks, [])
            order = design.rater_order(mine, study.repeats, design.rng_for(study.seed, "order", code))
            label = labels[index - first] if index - first < len(labels) else ""
            raters.append(Rater(study=study, code=code, index=index, label=label, n_items=len(order)))
            plans.append(order)
        Rater.objects.bulk_create(raters)
        Item.objects.bulk_create([
            Item(rater=rater, position=position, study_tile_id=tile_pk, is_repeat=is_repeat)
            for rater, order in zip(raters, plans, strict=True)
            for position, (tile_pk, is_repeat) in enumerate(order, start=1)
        ])
    return raters


def rater_revoke(*, rater: Rater) -> None:
    Rater.objects.filter(pk=rater.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def rater_profile_save(*, rater: Rater, specialty: str, years_in_practice: int | None) -> None:
    if len(specialty) > 100 or NUL in specialty:
        raise StudyError("specialty: at most 100 characters, without NUL")
    if years_in_practice is not None and not 0 <= years_in_practice <= 80:
        raise StudyError("years in practice: 0 to 80")
    Rater.objects.filter(pk=rater.pk).update(specialty=specialty.strip(), years_in_practice=years_in_practice,
                                             profile_done=True, last_active=timezone.now())


# ------------------------------------------------------------------------------------------- rating

def _locked_rater(token: str) -> queries.RaterRow:
    rater = queries.rater_lock(token=token)
    if rater is None:
        raise NotFound("no such rater")
    if not rater.study_open or rater.finished_at is not None:
        raise Locked("this study's answers are final")
    return rater


def item_mark_served(*, item: queries.ItemRow) -> queries.ItemRow:
    """Record an item's first showing (the start of its server-side time), once."""
    if item.first_served_at is None:
        # COALESCE in one UPDATE: of two tabs opening the item at once, the earlier stamp stays.
        item.first_served_at = queries.item_mark_served(item_id=item.id, at=timezone.now())
    return item


@dataclass(frozen=True)
class Saved:
    position: int
    next_position: int
    n_items: int
    changed: bool  # False for a repeated identical submission (a double click): nothing new stored


def validate_answer(*, tissues: Sequence[str], tissue: str, quality: object, artifacts: object,
                    comment: str) -> dict:
    """The checked answer, or AnswerInvalid naming each bad field."""
    errors = {}
    if tissue not in tissues:
        errors["tissue"] = "Choose one of the tissues offered."
    try:
        quality = int(quality)
    except (TypeError, ValueError):
        quality = None
    if quality is None or not QUALITY_RANGE[0] <= quality <= QUALITY_RANGE[1]:
        errors["quality"] = "Choose a quality from 1 to 5."
    if artifacts not in ("yes", "no", True, False):
        errors["artifacts"] = "Answer yes or no."
    if len(comment) > COMMENT_MAX_LENGTH:
        errors["comment"] = f"At most {COMMENT_MAX_LENGTH:,} characters ({len(comment):,} given)."
    elif NUL in comment:
        errors["comment"] = NUL_MESSAGE
    if errors:
        raise AnswerInvalid(errors)
    return {"tissue_answer": tissue, "quality": quality, "artifacts": artifacts in ("yes", True),
            "comment": comment}


def rating_submit(*, token: str, position: int, tissue: str, quality: object, artifacts: object,
                  comment: str = "", active_seconds: float | None = None) -> Saved:
    """Store a rater's answer to their current or an earlier item; a changed answer adds a revision.

    Five statements in one transaction: lock the rater, read the item and its rating, write the rating,
    its revision, and the rater's progress (see studies/queries.py for why they are written by hand).
    """
    if active_seconds is not None and not (0 <= active_seconds <= MAX_ACTIVE_SECONDS and math.isfinite(active_seconds)):
        active_seconds = None
    with transaction.atomic():
        rater = _locked_rater(token)
        answer = validate_answer(tissues=rater.tissues, tissue=tissue, quality=quality, artifacts=artifacts,
                                 comment=comment)
        item = None
        if 1 <= position <= min(rater.next_position, rater.n_items):
            item = queries.rater_item(rater_id=rater.id, position=position)
        if item is None:
            raise NotFound("that item is not yours to answer yet")
        now = timezone.now()
        seconds = (now - (item.first_served_at or now)).total_seconds()
        rating = item.rating
        if rating is None:
            rating_id, number = queries.rating_insert(item_id=item.id, answer=answer, seconds=seconds,
                                                      active_seconds=active_seconds, at=now), 1
        elif all(getattr(rating, k) == v for k, v in answer.items()):
            rating_id, number = rating.id, None  # the same answer again: a double submit stores nothing
        else:
            rating_id, number = rating.id, queries.rating_revise(rating_id=rating.id, answer=answer, at=now)
        if number is not None:
            queries.revision_insert(rating_id=rating_id, number=number, answer=answer, seconds=seconds,
                                    active_seconds=active_seconds, at=now)
        next_position = rater.next_position + (1 if position == rater.next_position else 0)
        if item.first_served_at is None:  # answered without its page ever served: its time starts now
            queries.item_mark_served(item_id=item.id, at=now)
        queries.rater_advance(rater_id=rater.id, next_position=next_position, at=now)
    return Saved(position=position, next_position=next_position, n_items=rater.n_items,
                 changed=number is not None)


def rater_finish(*, token: str) -> None:
    """Lock the rater's ratings: from here only the debrief can be answered."""
    with transaction.atomic():
        rater = _locked_rater(token)
        if not rater.all_answered:
            raise StudyError(f"{rater.n_items - rater.next_position + 1} items are still unanswered")
        Rater.objects.filter(pk=rater.id).update(finished_at=timezone.now(), last_active=timezone.now())


def rater_debrief_save(*, rater: Rater, suspected: str, giveaway: str) -> None:
    if rater.finished_at is None:
        raise StudyError("the debrief comes after the last item")
    if suspected not in Rater.Suspected.values:
        raise AnswerInvalid({"suspected": "Answer yes, no or unsure."})
    if len(giveaway) > COMMENT_MAX_LENGTH:
        raise AnswerInvalid({"giveaway": f"At most {COMMENT_MAX_LENGTH:,} characters ({len(giveaway):,} given)."})
    if NUL in giveaway:
        raise AnswerInvalid({"giveaway": NUL_MESSAGE})
    updated = Rater.objects.filter(pk=rater.pk, debriefed_at__isnull=True).update(
        suspected_synthetic=suspected, giveaway=giveaway.strip(), debriefed_at=timezone.now())
    if not updated:
        raise StudyError("the debrief was answered already")
