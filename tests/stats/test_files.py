"""A lab's ratings file: read as CSV or Parquet, refused with a message naming the file, row and column."""

from __future__ import annotations

import pytest

from stats.analysis import files, schema, simulate


def test_csv_and_parquet_read_the_same(tmp_path):
    frame = simulate.study_ratings(raters=3, seed=2)
    frame.to_csv(tmp_path / "r.csv", index=False)
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    from_csv, from_parquet = files.read_ratings(tmp_path / "r.csv"), files.read_ratings(tmp_path / "r.parquet")
    assert from_csv["quality"].tolist() == from_parquet["quality"].tolist() == frame["quality"].tolist()
    assert from_csv["artifacts"].tolist() == frame["artifacts"].tolist()


def test_one_rater_only_is_refused_by_name(tmp_path):
    frame = simulate.study_ratings(raters=1, seed=2)
    frame.to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(schema.AnalysisInputError, match=r"one\.csv, column 'rater': every row names the same "
                                                         r"rater \(R001\)"):
        files.read_ratings(tmp_path / "one.csv")


def test_an_empty_cell_in_a_required_column_is_named(tmp_path):
    (tmp_path / "gap.csv").write_text("rater,tile,source,tissue,tissue_answer,quality,artifacts\n"
                                      "a,t1,gan,lung,lung,3,no\nb,t1,gan,lung,,3,no\n")
    with pytest.raises(schema.AnalysisInputError, match=r"gap\.csv, row 2, column 'tissue_answer': empty value"):
        files.read_ratings(tmp_path / "gap.csv")


def test_unknown_file_type_and_missing_file(tmp_path):
    (tmp_path / "r.xlsx").write_bytes(b"x")
    with pytest.raises(schema.AnalysisInputError, match="unknown file type"):
        files.read_ratings(tmp_path / "r.xlsx")
    with pytest.raises(schema.AnalysisInputError, match="no such file"):
        files.read_ratings(tmp_path / "absent.csv")


def test_every_column_is_described_for_the_data_package():
    for columns in (schema.RATINGS, schema.TILES, schema.RATERS, schema.ANSWERS, schema.PER_RATER,
                    schema.GAME_TILE_SUMMARY, schema.STUDY_TILE_SUMMARY, schema.PER_PLAYER):
        for field in schema.table_schema(columns)["fields"]:
            assert field["type"] in {"string", "integer", "number", "boolean", "datetime"}
            assert len(field["description"]) > 10
    quality = next(f for f in schema.table_schema(schema.RATINGS)["fields"] if f["name"] == "quality")
    assert quality["constraints"] == {"required": True, "minimum": 1, "maximum": 5}
