"""Detectability catches tiles that look nothing like the real ones; usefulness scores a tissue
classifier trained on one source and tested on another."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics.detectability import DetectConfig, detectability
from training.metrics.usefulness import UsefulConfig, classification_scores, train_test


def test_detectability_catches_flat_grey_fakes(small_cohort):
    _, real, _ = small_cohort
    rng = np.random.default_rng(0)
    fake = np.clip(rng.normal(128, 10, size=real.shape), 0, 255).astype(np.uint8)
    result = detectability(real, fake, DetectConfig(folds=3, epochs=4, batch_size=16, width=8, min_steps=0))
    assert result["accuracy"] > 0.9 and len(result["folds"]) == 3


def test_classification_scores_on_a_known_case():
    labels = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])
    scores = classification_scores(labels, proba)
    assert scores["accuracy"] == 0.75 and scores["auc"] == 1.0
    assert scores["f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_resnet_learns_two_obviously_different_tissues():
    rng = np.random.default_rng(1)

    def tiles(colour, n):
        return np.clip(rng.normal(colour, 20, size=(n, 32, 32, 3)), 0, 255).astype(np.uint8)

    x = np.concatenate([tiles((200, 80, 160), 24), tiles((80, 60, 200), 24)])
    y = np.repeat([0, 1], 24)
    scores = train_test(x, y, x[::3], y[::3], UsefulConfig(epochs=3, batch_size=16, image_size=32, min_steps=0))
    assert scores["accuracy"] == 1.0 and scores["auc"] == 1.0
