"""`study_stats --ratings`: the whole analysis from a file, without a database."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from stats.analysis import simulate


def test_a_ratings_file_gets_the_whole_analysis_without_the_database(tmp_path):
    # No django_db mark: any query would fail the test.
    frame = simulate.study_ratings(raters=6, anchors=6, repeats=3, seed=8)
    frame.to_parquet(tmp_path / "lab.parquet", index=False)
    out = io.StringIO()
    call_command("study_stats", "--ratings", str(tmp_path / "lab.parquet"), "--json", str(tmp_path / "r.json"),
                 "--html", str(tmp_path / "r.html"), stdout=out, stderr=io.StringIO())
    result = json.loads((tmp_path / "r.json").read_text())
    assert len(result["tests"]) == 2 * 3 * 3
    assert {t["comparison"] for t in result["tests"]} == {"rnagan > gan", "real > gan", "real > rnagan"}
    assert {t["test"] for t in result["tests"]} == {"paired t, one-sided", "wilcoxon signed-rank, one-sided",
                                                    "mixed model"}
    for record in result["tests"]:
        assert set(record) >= {"tissue", "comparison", "test", "n", "statistic", "p", "p_holm", "effect", "ci95"}
    assert len(result["per_rater"]) == 6 * 2 * 3
    html = (tmp_path / "r.html").read_text()
    assert html.count("<svg") == 2 and "paired t, one-sided" in html
    assert "paired t, one-sided" in out.getvalue()


def test_a_bad_file_is_a_clear_command_error(tmp_path):
    frame = simulate.study_ratings(raters=2, seed=1)
    frame.loc[4, "quality"] = 9
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(CommandError, match=r"bad\.csv, row 5, column 'quality': 9 is outside the scale 1–5"):
        call_command("study_stats", "--ratings", str(tmp_path / "bad.csv"))
