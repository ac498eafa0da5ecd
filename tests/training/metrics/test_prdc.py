"""Precision says whether fakes look real, recall whether the real variety is covered."""

from __future__ import annotations

import numpy as np

from training.metrics.prdc import prdc


def test_identical_sets_score_one_and_far_sets_zero():
    real = np.random.default_rng(0).normal(size=(200, 5))
    same = prdc(real, real.copy())
    assert same["precision"] == 1 and same["recall"] == 1 and same["coverage"] == 1
    far = prdc(real, real + 100)
    assert far["precision"] == 0 and far["recall"] == 0 and far["coverage"] == 0


def test_a_collapsed_generator_is_precise_but_has_low_recall():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(400, 2))
    # Every fake sits near one corner of the real cloud: realistic, but one mode only.
    fake = rng.normal(loc=(1.0, 1.0), scale=0.1, size=(400, 2))
    scores = prdc(real, fake)
    assert scores["precision"] > 0.9
    assert scores["recall"] < 0.3
