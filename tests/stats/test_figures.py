"""The figures are drawn from the JSON result and show every source, with captions that count the data."""

from __future__ import annotations

from stats.analysis import figures, report, simulate


def test_study_figures_show_every_source_and_count_the_ratings():
    result = report.analyse_study(simulate.study_ratings(raters=5, seed=4))
    drawn = {d.name: d for d in figures.study_figures(result)}
    assert set(drawn) == {"figure6_quality", "accuracy_artifacts"}
    for label in ("Real", "RNA-GAN", "GAN"):
        assert f">{label}<" in drawn["figure6_quality"].svg  # tick labels stay text (svg.fonttype none)
        assert f">{label}<" in drawn["accuracy_artifacts"].svg  # the legend
    assert "5 raters, 90 first-presentation ratings" in drawn["figure6_quality"].caption
    assert figures.study_figures(result)[0].svg == drawn["figure6_quality"].svg  # deterministic


def test_game_figures_count_the_answers():
    result = report.analyse_game(simulate.game_answers(games=20, rounds=10, seed=2))
    drawn = {d.name: d for d in figures.game_figures(result)}
    assert "200 answers" in drawn["game_roc"].caption and "20 games" in drawn["game_learning"].caption
    assert drawn["game_roc"].svg.lstrip().startswith("<?xml")
