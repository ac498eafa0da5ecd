"""Designs: anchors for everyone, blocks that reach --min-raters, repeats well apart, stable orders."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from studies import design, services
from studies.models import REPEAT_MIN_GAP, Item, StudyTile
from tests.studies.conftest import TISSUES

pytestmark = pytest.mark.django_db


def test_anchors_and_blocks_give_every_tile_min_raters_and_every_rater_the_anchors(study_catalog):
    study = services.study_create(name="blocks", tissues=TISSUES, per_cell=8, anchors=6, block_size=7,
                                  min_raters=2, repeats=3, seed=5)
    anchors = set(StudyTile.objects.filter(study=study, is_anchor=True).values_list("pk", flat=True))
    assert len(anchors) == 6
    # six anchors over six cells: one a cell
    assert Counter(StudyTile.objects.filter(pk__in=anchors).values_list("source", "tissue")) == Counter(
        {(s, t): 1 for s in ("real", "gan", "rnagan") for t in TISSUES})
    blocks = Counter(StudyTile.objects.filter(study=study, is_anchor=False).values_list("block", flat=True))
    assert len(blocks) == 6 and max(blocks.values()) - min(blocks.values()) <= 1  # 42 tiles in 6 blocks of 7
    raters = services.study_invite(study=study, n=2 * len(blocks))

    shown = Counter(Item.objects.filter(rater__study=study, is_repeat=False).values_list("study_tile", flat=True))
    assert len(shown) == 48 and min(shown.values()) >= 2
    for rater in raters:
        tiles = set(Item.objects.filter(rater=rater).values_list("study_tile", flat=True))
        assert anchors <= tiles
        assert Item.objects.filter(rater=rater, is_repeat=True).count() == 3
    from studies.selectors import study_coverage

    coverage = study_coverage(study=study)
    assert coverage["min"] >= 2 and coverage["raters_needed"] == 12


def test_repeats_come_at_least_ten_items_after_the_first_showing(small_study):
    for rater in services.study_invite(study=small_study, n=4):
        positions = {}
        for item in Item.objects.filter(rater=rater).order_by("position"):
            positions.setdefault(item.study_tile_id, []).append((item.position, item.is_repeat))
        repeated = [p for p in positions.values() if len(p) == 2]
        assert len(repeated) == 2 and rater.n_items == 20
        for (first, first_is_repeat), (again, again_is_repeat) in repeated:
            assert (first_is_repeat, again_is_repeat) == (False, True)
            assert again - first >= REPEAT_MIN_GAP


def test_rater_order_gaps_hold_for_many_seeds_and_sizes():
    for seed in range(300):
        rng = random.Random(seed)
        n = rng.randint(REPEAT_MIN_GAP, 130)
        repeats = rng.randint(0, design.repeats_possible(n))
        order = design.rater_order(list(range(n)), repeats, random.Random(seed))
        assert len(order) == n + repeats
        first = {item: i for i, (item, again) in enumerate(order) if not again}
        assert sorted(first) == list(range(n))
        gaps = [i - first[item] for i, (item, again) in enumerate(order) if again]
        assert len({item for item, again in order if again}) == repeats  # distinct tiles repeated
        assert len(gaps) == repeats and all(g >= REPEAT_MIN_GAP for g in gaps)


def test_each_rater_has_an_own_order_that_is_stable(small_study):
    a, b = services.study_invite(study=small_study, n=2)
    order = lambda r: list(Item.objects.filter(rater=r).order_by("position").values_list("study_tile", flat=True))  # noqa: E731
    assert order(a) != order(b)
    again = design.rater_order(sorted(set(order(a))), 2, design.rng_for(small_study.seed, "order", "R01"))
    assert len(again) == 20


def test_the_default_design_is_the_papers_everyone_rates_everything(small_study):
    raters = services.study_invite(study=small_study, n=3)
    for rater in raters:
        assert Item.objects.filter(rater=rater, is_repeat=False).count() == 18


def test_impossible_designs_are_refused_with_the_reason(study_catalog):
    with pytest.raises(services.StudyError, match="--repeats 10"):
        services.study_create(name="x", tissues=TISSUES, per_cell=3, repeats=10)
    with pytest.raises(services.StudyError, match="--anchors 19"):
        services.study_create(name="x", tissues=TISSUES, per_cell=3, anchors=19)
    with pytest.raises(services.StudyError, match=r"cell \(real, Lung\): the catalog has 8 active tiles, 9"):
        services.study_create(name="x", tissues=TISSUES, per_cell=9)
    with pytest.raises(services.StudyError, match="cell .*Colon.*0 active"):
        services.study_create(name="x", tissues=["Colon"], per_cell=1)
    with pytest.raises(services.StudyError, match="best-of N needs"):
        services.study_create(name="x", tissues=TISSUES, per_cell=3, selection="best-of", candidates=2)
    services.study_create(name="x", tissues=TISSUES, per_cell=1)
    with pytest.raises(services.StudyError, match="exists already"):
        services.study_create(name="x", tissues=TISSUES, per_cell=1)


def test_a_name_that_is_not_a_slug_is_refused_by_field(study_catalog):
    with pytest.raises(services.StudyError, match="study: name: "):
        services.study_create(name="not a slug!", tissues=TISSUES, per_cell=1)


def test_study_tiles_are_frozen_against_catalog_deletion(small_study):
    from django.db.models import ProtectedError

    tile = small_study.tiles.first().tile
    with pytest.raises(ProtectedError):
        tile.delete()


def test_no_item_is_repeated_twice_whatever_the_seed():
    # Regression: repeats were once picked by index after earlier insertions had shifted the order.
    for seed in range(300):
        order = design.rater_order(list(range(40)), 10, random.Random(seed))
        repeated = [item for item, is_repeat in order if is_repeat]
        assert len(repeated) == len(set(repeated)) == 10
