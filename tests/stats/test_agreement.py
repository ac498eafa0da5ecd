"""Agreement figures against published worked examples."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from stats.analysis import agreement, simulate

# Fleiss (1971) as worked on Wikipedia ("Fleiss' kappa", worked example): 10 subjects, 14 raters,
# 5 categories; the counts of raters putting each subject in each category. κ = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers, 12 units,
# missing values as None. Published: nominal α = 0.743, ordinal 0.815, interval 0.849.
KRIPPENDORFF = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges. Published ICC(2,1) = .29.
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def long_from_counts(table: list[list[int]]) -> pd.DataFrame:
    rows = []
    for subject, counts in enumerate(table):
        raters = iter(range(sum(counts)))
        for category, count in enumerate(counts):
            rows += [{"tile": f"s{subject}", "rater": f"r{next(raters)}", "answer": f"c{category}"}
                     for _ in range(count)]
    return pd.DataFrame(rows)


def test_fleiss_kappa_matches_the_worked_example():
    kappa = agreement.fleiss(long_from_counts(FLEISS_TABLE), "answer")
    assert kappa["value"] == pytest.approx(0.210, abs=5e-4)
    assert (kappa["items"], kappa["raters"]) == (10, 14)


@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_alpha_matches_the_published_example(level, published):
    frame = pd.DataFrame([{"rater": rater, "tile": f"u{unit}", "quality": value}
                          for rater, values in KRIPPENDORFF.items() for unit, value in enumerate(values)
                          if value is not None])
    alpha = agreement.krippendorff_alpha(frame, "quality", level=level)
    assert alpha["value"] == pytest.approx(published, abs=5e-4)
    assert alpha["items"] == 11  # unit 12 has one value only: it cannot be paired


def test_icc_2_1_matches_shrout_and_fleiss():
    assert agreement.icc_2_1(SHROUT_FLEISS) == pytest.approx(0.29, abs=0.005)
    frame = pd.DataFrame([{"tile": f"t{i}", "rater": f"j{j}", "quality": v}
                          for i, row in enumerate(SHROUT_FLEISS) for j, v in enumerate(row)])
    assert agreement.icc(frame)["value"] == pytest.approx(agreement.icc_2_1(SHROUT_FLEISS))


def test_agreement_uses_the_anchor_set_and_says_why_when_it_cannot():
    ratings = simulate.study_ratings(raters=5, anchors=6, seed=3)
    result = agreement.agreement(ratings)
    assert result["basis"] == "the anchor tiles" and result["tiles"] == 6
    assert result["icc_2_1_quality"]["raters"] == 5
    alone = agreement.agreement(ratings[ratings["rater"] == "R001"])
    for key in ("fleiss_kappa_tissue", "krippendorff_alpha_quality", "icc_2_1_quality"):
        assert alone[key]["value"] is None and alone[key]["note"]


def test_retest_pairs_each_repeat_with_the_first_rating():
    first = pd.DataFrame({"rater": ["a"] * 4 + ["b"] * 4, "tile": ["t1", "t2", "t3", "t4"] * 2,
                          "quality": [1, 2, 4, 5, 2, 3, 4, 5], "tissue_answer": ["lung"] * 8,
                          "artifacts": [True, False] * 4, "is_repeat": False})
    again = first.assign(is_repeat=True, quality=[1, 2, 4, 5, 3, 3, 4, 4])
    result = agreement.retest_agreement(pd.concat([first, again]))
    assert result["pairs"] == 8
    assert result["quality_exact_agreement"] == 6 / 8
    # Quadratic weights: observed disagreement Σ(i−j)² over pairs = 1 + 1 = 2 (two pairs one apart).
    # Expected (first and second ratings independent): mean over all 8×8 pairings of (x−y)².
    x, y = first["quality"].tolist(), again["quality"].tolist()
    expected = sum((a - b) ** 2 for a in x for b in y) / 64
    assert result["quality_weighted_kappa"]["value"] == pytest.approx(1 - (2 / 8) / expected)
    assert result["tissue_kappa"]["value"] is None and "same value" in result["tissue_kappa"]["note"]
    assert result["artifacts_kappa"]["value"] == pytest.approx(1.0)


def test_no_repeats_says_so():
    result = agreement.retest_agreement(simulate.study_ratings(raters=2, seed=1))
    assert result["quality_weighted_kappa"]["value"] is None
    assert result["quality_weighted_kappa"]["note"] == "no hidden repeats in the data"
    assert not math.isnan(result["pairs"])
