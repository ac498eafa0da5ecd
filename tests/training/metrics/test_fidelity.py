"""The fidelity metric recovers each sample's programs from its own real tiles (r ≈ 1) and finds
nothing on tiles handed to the wrong samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.metrics.fidelity import (
    feature_retrieval,
    measure_tiles,
    program_fidelity,
    retrieval,
    split_half_retrieval,
    tile_mpp,
    variance_ratio,
)
from training.synthetic.histology import PROGRAM_NAMES


def splits_of(truth: pd.DataFrame) -> pd.Series:
    ids = truth["sample_id"].tolist()
    return pd.Series(["train"] * 10 + ["test"] * (len(ids) - 10), index=ids)


def test_real_tiles_of_a_small_cohort_recover_their_programs(small_cohort):
    truth, tiles, owners = small_cohort
    measured = measure_tiles(tiles, owners, mpp=tile_mpp(64))
    result = program_fidelity(measured, truth, splits_of(truth))
    for program in PROGRAM_NAMES:
        assert result["correlation"]["all"][program]["pearson"] > 0.8, (program, result["correlation"]["all"])
        assert result["variance_ratio"][program] > 2  # 1 when tiles ignore the sample
    assert result["retrieval"]["all"]["top1"] >= 0.5  # chance is 1/16
    assert result["retrieval"]["held_out"]["n"] == 6


def test_tiles_of_shuffled_samples_show_no_fidelity(small_cohort):
    truth, tiles, owners = small_cohort
    rng = np.random.default_rng(0)
    shuffled = list(rng.permutation(owners))  # every tile goes to a random sample
    result = program_fidelity(measure_tiles(tiles, shuffled, mpp=tile_mpp(64)), truth, splits_of(truth))
    rs = [result["correlation"]["all"][p]["pearson"] for p in PROGRAM_NAMES]
    assert np.mean(np.abs(rs)) < 0.35, rs
    assert result["retrieval"]["all"]["top1"] <= 0.25


def test_variance_ratio_is_near_one_when_tiles_ignore_their_sample():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"sample_id": np.repeat([f"s{i}" for i in range(200)], 8)})
    for p in PROGRAM_NAMES:
        frame[p] = rng.normal(size=len(frame))
    ratios = variance_ratio(frame)
    assert all(0.7 < r < 1.3 for r in ratios.values()), ratios  # F(199, 1400): SD ≈ 0.1


def test_retrieval_counts_ranks_and_chance():
    refs = np.eye(10)
    assert retrieval(refs, refs)["top1"] == 1.0
    swapped = refs[[1, 0, *range(2, 10)]]
    scores = retrieval(swapped, refs)
    assert scores["top1"] == pytest.approx(0.8) and scores["top5"] == 1.0 and scores["chance_top1"] == 0.1


def test_feature_retrieval_finds_samples_and_its_ceiling_from_split_halves():
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(12, 6)) * 3
    ids = np.repeat([f"s{i}" for i in range(12)], 10)
    real = centres.repeat(10, 0) + rng.normal(size=(120, 6))
    generated = centres.repeat(10, 0) + rng.normal(size=(120, 6))
    assert feature_retrieval(generated, ids, real, ids)["top1"] > 0.9
    assert split_half_retrieval(real, ids)["top1"] > 0.9
    assert feature_retrieval(generated, rng.permutation(ids), real, ids)["top1"] < 0.4
