"""The paired tests against arithmetic done by hand, Holm against a worked example, and the messages that
say why a test cannot run."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from stats.analysis import ratings, report, schema


def two_source_table(pairs: dict[str, tuple[tuple[int, ...], tuple[int, ...]]], tissue: str = "lung") -> pd.DataFrame:
    """Ratings of GAN and RNA-GAN tiles: rater → (gan qualities, rnagan qualities), one tile per quality."""
    rows = []
    for rater, (gan, rnagan) in pairs.items():
        for source, qualities in (("gan", gan), ("rnagan", rnagan)):
            for k, quality in enumerate(qualities):
                rows.append({"rater": rater, "tile": f"{source}-{k}", "source": source, "tissue": tissue,
                             "tissue_answer": tissue, "quality": quality, "artifacts": False})
    return pd.DataFrame(rows)


def record(result: dict, test: str, comparison: str = "rnagan > gan", tissue: str = "lung") -> dict:
    return next(r for r in result["tests"] if r["test"] == test and r["comparison"] == comparison
                and r["tissue"] == tissue)


def test_paired_t_matches_the_hand_computation_with_four_degrees_of_freedom():
    # Differences rnagan − gan per rater: 1, 2, 0, 1, 3.
    # mean 7/5 = 1.4; squared deviations .16 + .36 + 1.96 + .16 + 2.56 = 5.2; s² = 5.2/4 = 1.3
    # t = 1.4 / sqrt(1.3/5) = 2.7456...; for ν = 4 the t CDF is closed-form (Student's t, ν = 4):
    # F(t) = 1/2 + (3/8) · x · (1 − x²/12) with x = t / sqrt(1 + t²/4); here x = 1.6166 and p = 1 − F = 0.0258
    frame = two_source_table({"A": ((2,), (3,)), "B": ((2,), (4,)), "C": ((3,), (3,)), "D": ((1,), (2,)),
                              "E": ((2,), (5,))})
    result = report.analyse_study(frame)
    t_hand = 1.4 / math.sqrt(1.3 / 5)
    x = t_hand / math.sqrt(1 + t_hand ** 2 / 4)
    p_hand = 0.5 - (3 / 8) * x * (1 - x ** 2 / 12)
    t = record(result, ratings.PAIRED_T)
    assert t["n"] == 5 and t["df"] == 4
    assert t["statistic"] == pytest.approx(t_hand, rel=1e-12)
    assert t["p"] == pytest.approx(p_hand, rel=1e-9)
    assert t["effect"] == pytest.approx(1.4)
    assert t["d_z"] == pytest.approx(1.4 / math.sqrt(1.3))
    low, high = t["ci95"]
    assert 0 <= low < 1.4 < high <= 3


def test_wilcoxon_and_t_on_half_point_means_match_the_hand_values():
    # Two tiles a cell, so the per-rater means are halves and the differences 0.5, 1, −1.5, 2, 2.5, 3 have
    # distinct magnitudes (ranks 1…6, no ties). W+ = 21 − 3 = 18; under H0 every sign pattern is equally
    # likely, and W+ ≥ 18 ⇔ the negative ranks sum to ≤ 3: {}, {1}, {2}, {3}, {1,2} → p = 5/64.
    # t: mean 7.5/6 = 1.25, squared deviations sum 13.375, s² = 2.675, t = 1.25 / sqrt(2.675/6).
    frame = two_source_table({
        "A": ((2, 2), (2, 3)), "B": ((2, 2), (3, 3)), "C": ((3, 4), (2, 2)),
        "D": ((1, 2), (3, 4)), "E": ((1, 2), (4, 4)), "F": ((1, 1), (4, 4)),
    })
    result = report.analyse_study(frame)
    w = record(result, ratings.WILCOXON)
    assert w["statistic"] == 18
    assert w["p"] == pytest.approx(5 / 64, abs=1e-12)
    # Hodges–Lehmann: the median of the 21 Walsh averages of the six differences.
    d = [0.5, 1, -1.5, 2, 2.5, 3]
    walsh = sorted((d[i] + d[j]) / 2 for i in range(6) for j in range(i, 6))
    assert w["effect"] == pytest.approx(walsh[10])
    # Its interval: P(T+ ≤ 0) = 1/64 ≤ 0.025 < P(T+ ≤ 1) = 2/64, so k = 1: the smallest and largest Walsh
    # averages, i.e. the smallest and largest differences (a 1 − 2/64 = 96.9 % interval).
    assert w["ci95"] == [-1.5, 3.0]
    t = record(result, ratings.PAIRED_T)
    assert t["statistic"] == pytest.approx(1.25 / math.sqrt(2.675 / 6), rel=1e-12)


def test_the_signed_rank_null_distribution_counts_subsets():
    # n = 3: subset sums of {1, 2, 3} are 0,1,2,3,3,4,5,6 → P(T+ ≤ s) = 1,2,3,5,6,7,8 (/8)
    assert ratings.signed_rank_null_cdf(3).tolist() == pytest.approx([1 / 8, 2 / 8, 3 / 8, 5 / 8, 6 / 8, 7 / 8, 1])


def test_holm_matches_a_worked_example():
    # p = .01, .04, .03, .005 → ordered .005·4 = .02, .01·3 = .03, .03·2 = .06, .04·1 = .04 → max(.06, .04)
    records = [{"test": "t", "p": p, "p_holm": None, "note": ""} for p in (0.01, 0.04, 0.03, 0.005)]
    ratings.holm(records)
    assert [r["p_holm"] for r in records] == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_runs_within_each_test_not_across_tests():
    records = [{"test": "a", "p": 0.01, "p_holm": None, "note": ""},
               {"test": "b", "p": 0.01, "p_holm": None, "note": ""}]
    ratings.holm(records)
    assert [r["p_holm"] for r in records] == [0.01, 0.01]


def test_a_comparison_without_data_says_why_instead_of_nan():
    frame = two_source_table({"A": ((2,), (3,)), "B": ((2,), (4,)), "C": ((1,), (3,))})
    result = report.analyse_study(frame)
    for test in (ratings.PAIRED_T, ratings.WILCOXON, ratings.MIXED):
        missing = record(result, test, comparison="real > gan")
        assert missing["p"] is None and missing["statistic"] is None
        assert "real" in missing["note"]
    assert all(r["p"] is not None or r["note"] for r in result["tests"])


def test_a_rater_without_a_pair_is_left_out_by_name():
    frame = two_source_table({"A": ((2,), (3,)), "B": ((2,), (4,)), "C": ((1,), (3,))})
    frame = frame[~((frame["rater"] == "C") & (frame["source"] == "gan"))]
    result = report.analyse_study(frame)
    assert record(result, ratings.PAIRED_T)["n"] == 2
    assert "rater C has no gan ratings of lung tiles: left out of rnagan > gan (lung)" in result["warnings"]


def test_identical_differences_say_t_is_undefined():
    frame = two_source_table({"A": ((2,), (3,)), "B": ((2,), (3,)), "C": ((1,), (2,))})
    t = record(report.analyse_study(frame), ratings.PAIRED_T)
    assert t["p"] is None and t["effect"] == 1.0 and "undefined" in t["note"]


def test_differences_equal_up_to_float_noise_count_as_identical():
    # Thirds: (3+4+3)/3 − (2+3+2)/3 = 1 for both raters, though the floats differ in the last bit.
    frame = two_source_table({"A": ((2, 3, 2), (3, 4, 3)), "B": ((1, 2, 1), (2, 3, 2))})
    t = record(report.analyse_study(frame), ratings.PAIRED_T)
    assert t["p"] is None and "undefined" in t["note"]


def test_per_rater_means_and_the_across_rater_summary():
    frame = two_source_table({"A": ((2, 4), (3, 3)), "B": ((1, 1), (5, 5))})
    frame.loc[(frame["rater"] == "A") & (frame["source"] == "gan"), "tissue_answer"] = ["lung", "brain"]
    frame.loc[frame["source"] == "gan", "artifacts"] = True
    result = report.analyse_study(frame)
    per = {(r["rater"], r["source"]): r for r in result["per_rater"]}
    assert per["A", "gan"]["mean_quality"] == 3 and per["A", "gan"]["tissue_accuracy"] == 0.5
    assert per["B", "rnagan"]["mean_quality"] == 5 and per["B", "rnagan"]["artifact_rate"] == 0
    gan = next(r for r in result["summary"] if r["source"] == "gan")
    assert gan["quality_mean"] == 2 and gan["quality_sd"] == pytest.approx(math.sqrt(2))
    assert gan["tissue_accuracy_mean"] == 0.75 and gan["artifact_rate_pooled"] == 1
    low, high = gan["tissue_accuracy_wilson95"]
    assert low < 0.75 < high


def test_repeats_do_not_count_in_the_means():
    frame = two_source_table({"A": ((2,), (3,)), "B": ((2,), (4,))})
    again = frame.iloc[[0]].assign(quality=5, is_repeat=True)
    result = report.analyse_study(pd.concat([frame.assign(is_repeat=False), again]))
    assert next(r for r in result["per_rater"] if r["rater"] == "A" and r["source"] == "gan")["mean_quality"] == 2


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns="quality"), "ratings.csv: missing column 'quality'"),
    (lambda f: f.assign(source=["gan", "vae"] + ["gan"] * (len(f) - 2)),
     "ratings.csv, row 2, column 'source': unknown value 'vae' (allowed: real, gan, rnagan)"),
    (lambda f: f.assign(quality=[3, 3, 7] + [3] * (len(f) - 3)),
     "ratings.csv, row 3, column 'quality': 7 is outside the scale 1–5"),
    (lambda f: f.assign(quality=["3", "good"] + ["3"] * (len(f) - 2)),
     "ratings.csv, row 2, column 'quality': 'good' is not an integer"),
    (lambda f: f.assign(artifacts=["yes", "maybe"] + ["no"] * (len(f) - 2)),
     "ratings.csv, row 2, column 'artifacts': 'maybe' is not yes/no"),
])
def test_bad_input_names_the_file_row_and_column(change, message):
    frame = change(two_source_table({"A": ((2,), (3,)), "B": ((2,), (4,))}))
    with pytest.raises(schema.AnalysisInputError) as caught:
        report.analyse_study(frame, file="ratings.csv")
    assert str(caught.value).startswith(message)
