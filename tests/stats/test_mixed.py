"""The mixed model recovers known source effects from ratings simulated with crossed rater and tile effects."""

from __future__ import annotations

import numpy as np
import pytest

from stats.analysis import ratings, report, simulate


def test_the_mixed_model_recovers_known_effects():
    means = {"real": 3.5, "rnagan": 3.0, "gan": 2.2}
    frame = simulate.study_ratings(raters=20, tiles_per_cell=12, tissues=("lung",), means=means, rater_sd=0.5,
                                   tile_sd=0.3, noise_sd=0.5, seed=11, rounded=False)
    frame["quality"] = frame["quality"].clip(1, 5)  # the scale; the means sit well inside it
    result = report.analyse_study(frame.assign(quality=frame["quality"].round().astype(int)))
    mixed = {r["comparison"]: r for r in result["tests"] if r["test"] == ratings.MIXED}
    truth = {"rnagan > gan": 0.8, "real > gan": 1.3, "real > rnagan": 0.5}
    for comparison, effect in truth.items():
        record = mixed[comparison]
        assert record["n"] == 20 * 12 * 2
        assert record["effect"] == pytest.approx(effect, abs=0.2), comparison
        low, high = record["ci95"]
        assert low < effect < high
        assert record["p"] < 0.01 and record["p_holm"] >= record["p"]
    components = result["variance_components"]["lung"]
    assert components["rater_variance"] == pytest.approx(0.25, abs=0.15)
    assert components["residual_variance"] == pytest.approx(0.25 + 1 / 12, abs=0.1)  # noise + rounding


def test_the_mixed_model_finds_no_effect_where_there_is_none():
    frame = simulate.study_ratings(raters=12, tiles_per_cell=8, tissues=("brain",),
                                   means={"real": 3.0, "rnagan": 3.0, "gan": 3.0}, seed=5)
    mixed = [r for r in report.analyse_study(frame)["tests"] if r["test"] == ratings.MIXED]
    assert all(abs(r["effect"]) < 0.3 for r in mixed)
    assert min(r["p_holm"] for r in mixed) > 0.05


def test_the_profiled_reml_fit_agrees_with_statsmodels_mixedlm():
    from statsmodels.formula.api import mixedlm

    from stats.analysis import mixed

    frame = simulate.study_ratings(raters=15, tiles_per_cell=6, tissues=("lung",), seed=21)
    ours = mixed.fit(frame)
    data = frame.astype({"quality": float}).assign(everyone=1)
    oracle = mixedlm("quality ~ C(source, Treatment(reference='gan'))", data, groups="everyone", re_formula="0",
                     vc_formula={"rater": "0 + C(rater)", "tile": "0 + C(tile)"}).fit(reml=True)
    for source in ("real", "rnagan"):
        term = f"C(source, Treatment(reference='gan'))[T.{source}]"
        assert ours.params[ours.names.index(source)] == pytest.approx(oracle.fe_params[term], abs=1e-4)
        assert np.sqrt(ours.cov[ours.names.index(source)][ours.names.index(source)]) == pytest.approx(
            oracle.bse_fe[term], rel=1e-3)
    assert ours.params[0] == pytest.approx(oracle.fe_params["Intercept"], abs=1e-4)
    vc = dict(zip(oracle.model.exog_vc.names, oracle.vcomp, strict=True))
    assert ours.rater_variance == pytest.approx(vc["rater"], rel=1e-3)
    assert ours.tile_variance == pytest.approx(vc["tile"], rel=1e-3, abs=1e-5)
    assert ours.residual_variance == pytest.approx(oracle.scale, rel=1e-4)
