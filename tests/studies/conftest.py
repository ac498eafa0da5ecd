"""Fixtures for the rating study: the quiz's small on-disk catalog, and studies built on it."""

from __future__ import annotations

import pytest

from studies import services
from tests.quiz.conftest import Catalog, catalog  # noqa: F401 - the catalog fixture is shared

TISSUES = ("Lung", "Brain - Cortex")


@pytest.fixture
def study_catalog(catalog: Catalog) -> Catalog:  # noqa: F811
    """Two tissues, three sources, eight tiles a cell."""
    catalog.fill(TISSUES, real=8, gan=8, rnagan=8)
    return catalog


@pytest.fixture
def small_study(study_catalog):
    """The paper's design on the demo's scale: 2 tissues × 3 sources × 3 tiles, 2 hidden repeats."""
    return services.study_create(name="small", tissues=TISSUES, per_cell=3, repeats=2, seed=11)


def answer_all(rater, *, quality: int = 3, upto: int | None = None) -> None:
    rater.refresh_from_db()
    for position in range(rater.next_position, (upto or rater.n_items) + 1):
        services.rating_submit(token=rater.token, position=position, tissue=rater.study.tissues[0],
                               quality=quality, artifacts="no")
