"""align-expression: an external cohort's TPM table → the prepared genes, scaled like training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.training.data.test_expression import make_cohort
from training.cli.rnagan import main
from training.data.align import align_expression, coverage_path, read_table, symbols_from_gct, write_aligned
from training.data.expression import load_prepared, prepare_expression
from training.data.genes import ExpressionError, strip_version
from training.data.scaler import load_scaler


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("align")
    cohort = make_cohort(folder / "cohort")
    prepare_expression(cohort.config(folder / "prep", seed=7))
    return cohort, load_prepared(folder / "prep")


def cohort_table(cohort, samples, genes) -> pd.DataFrame:
    """TPM of some GTEx samples, genes as rows labelled by their GCT IDs."""
    rows = [cohort.genes.index(g) for g in genes]
    columns = [cohort.samples.index(s) for s in samples]
    return pd.DataFrame(cohort.values[np.ix_(rows, columns)], index=list(genes), columns=list(samples))


def test_aligning_training_samples_reproduces_their_prepared_rows(setup):
    cohort, prepared = setup
    samples = prepared.samples["sample_id"].tolist()[:6]
    aligned = align_expression(cohort_table(cohort, samples, cohort.genes), prepared.scaler)
    assert aligned.samples == samples
    assert aligned.genes == prepared.genes
    assert aligned.matrix.dtype == np.float32 and aligned.matrix.shape == (6, 25)
    np.testing.assert_allclose(aligned.matrix, prepared.matrix[:6], atol=1e-5)
    assert aligned.coverage["orientation"] == "genes-rows"
    assert aligned.coverage["found"] == 25 and aligned.coverage["matched"]["exact"] == 25
    assert aligned.coverage["labels_unmatched"]["count"] == 5  # the GCT genes not on the list


def test_rows_columns_without_versions_and_symbols_all_give_the_same_matrix(setup, tmp_path):
    cohort, prepared = setup
    samples = ["EXT-A", "EXT-B", "EXT-C"]
    rng = np.random.default_rng(5)
    tpm = pd.DataFrame(rng.gamma(1.0, 20.0, size=(len(cohort.genes), 3)), index=cohort.genes, columns=samples)
    symbol_of = dict(zip(cohort.genes, [f"SYM{i}" for i in range(len(cohort.genes))], strict=True))

    tpm.to_csv(tmp_path / "rows.csv")
    tpm.T.to_csv(tmp_path / "columns.tsv", sep="\t")
    tpm.rename(index=strip_version).T.to_parquet(tmp_path / "noversion.parquet")
    tpm.rename(index=symbol_of).to_csv(tmp_path / "symbols.csv")

    reference = align_expression(read_table(tmp_path / "rows.csv"), prepared.scaler)
    symbols = symbols_from_gct(cohort.gct)
    for name, orientation, how in [
        ("columns.tsv", "genes-columns", "exact"),
        ("noversion.parquet", "genes-columns", "without_version"),
        ("symbols.csv", "genes-rows", "symbol"),
    ]:
        aligned = align_expression(read_table(tmp_path / name), prepared.scaler, symbols=symbols)
        assert aligned.coverage["orientation"] == orientation, name
        assert aligned.coverage["matched"][how] == 25, name
        assert aligned.samples == samples
        np.testing.assert_allclose(aligned.matrix, reference.matrix, atol=1e-6, err_msg=name)
    expected = (
        np.log1p(tpm.loc[list(prepared.genes)].T.to_numpy()) - prepared.scaler.mean
    ) / prepared.scaler.sd
    np.testing.assert_allclose(reference.matrix, expected, atol=1e-5)


def test_genes_and_values_the_cohort_lacks_become_the_training_mean(setup):
    cohort, prepared = setup
    genes = list(prepared.genes)
    table = cohort_table(cohort, prepared.samples["sample_id"][:4], genes[:20])  # 5 listed genes absent
    table.iloc[3, 1] = np.nan  # one value missing
    aligned = align_expression(table, prepared.scaler)
    assert np.all(aligned.matrix[:, 20:] == 0)
    assert aligned.matrix[1, 3] == 0
    untouched = [c for c in range(2, 20) if c != 3]
    np.testing.assert_allclose(aligned.matrix[:, untouched], prepared.matrix[:4, untouched], atol=1e-5)
    assert aligned.coverage["missing"] == {"count": 5, "ids": genes[20:]}
    assert aligned.coverage["fraction_found"] == 0.8
    assert aligned.coverage["missing_values"] == 1


def test_genes_filled_at_preparation_stay_at_zero(setup, tmp_path):
    cohort, _ = setup
    listed = cohort.genes[:24] + ["ENSG99999999999.1"]
    (tmp_path / "genes.txt").write_text("\n".join(listed))
    prepare_expression(cohort.config(tmp_path / "prep", genes=tmp_path / "genes.txt"))
    scaler = load_scaler(tmp_path / "prep")
    table = pd.DataFrame({"S1": [3.0] * 25, "S2": [40.0] * 25}, index=listed)
    aligned = align_expression(table, scaler)
    assert aligned.coverage["found"] == 25 and aligned.coverage["genes_not_observed_in_training"] == 1
    assert np.all(aligned.matrix[:, 24] == 0)  # training never saw this gene vary


def test_descriptive_columns_are_ignored_and_a_gct_reads_as_a_table(setup, tmp_path):
    cohort, prepared = setup
    samples = prepared.samples["sample_id"].tolist()[:3]
    table = cohort_table(cohort, samples, cohort.genes)
    table.insert(0, "Description", [f"SYM{i}" for i in range(len(cohort.genes))])
    aligned = align_expression(table, prepared.scaler)
    assert aligned.coverage["ignored_columns"] == ["Description"] and aligned.samples == samples

    from_gct = align_expression(read_table(cohort.gct), prepared.scaler)
    rows = [from_gct.samples.index(s) for s in samples]
    np.testing.assert_allclose(from_gct.matrix[rows], aligned.matrix, atol=1e-6)


def test_bad_tables_are_named(setup):
    cohort, prepared = setup
    table = cohort_table(cohort, prepared.samples["sample_id"][:2], cohort.genes).astype(object)
    table.iloc[4, 1] = "high"
    with pytest.raises(
        ExpressionError, match=f"sample {table.columns[1]}, gene {cohort.genes[4]}: value is not"
    ):
        align_expression(table, prepared.scaler, source="cohort.csv")
    table.iloc[4, 1] = -1.0
    with pytest.raises(
        ExpressionError, match=f"sample {table.columns[1]}, gene {cohort.genes[4]}: .* negative"
    ):
        align_expression(table, prepared.scaler)
    unknown = pd.DataFrame(np.ones((2, 2)), index=["a", "b"], columns=["c", "d"])
    with pytest.raises(ExpressionError, match="cannot tell whether genes are rows or columns"):
        align_expression(unknown, prepared.scaler)
    with pytest.raises(ExpressionError, match="none of its gene labels match"):
        align_expression(unknown, prepared.scaler, orientation="genes-rows")


def test_command_line_writes_the_table_and_its_coverage(setup, tmp_path, capsys):
    cohort, prepared = setup
    samples = prepared.samples["sample_id"].tolist()[:5]
    cohort_table(cohort, samples, cohort.genes[:20]).rename(index=strip_version).to_csv(
        tmp_path / "cohort.csv"
    )
    out = tmp_path / "aligned.parquet"
    args = [
        "align-expression",
        "--table",
        str(tmp_path / "cohort.csv"),
        "--prepared",
        str(prepared.path),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "20 of 25 genes found (80.0%" in printed and "5 set to the training mean" in printed
    frame = pd.read_parquet(out)
    assert frame.index.name == "sample_id" and frame.index.tolist() == samples
    assert frame.columns.tolist() == list(prepared.genes)
    np.testing.assert_allclose(frame.to_numpy()[:, 2:20], prepared.matrix[:5, 2:20], atol=1e-5)
    coverage = json.loads(coverage_path(out).read_text())
    assert coverage_path(out).name == "aligned.coverage.json" and coverage["missing"]["count"] == 5

    csv_out = tmp_path / "aligned.csv"
    assert (
        main(
            [
                *args[:3],
                "--scaler",
                str(prepared.path / "scaler.npz"),
                "--out",
                str(csv_out),
                "--orientation",
                "genes-rows",
            ]
        )
        == 0
    )
    assert np.allclose(pd.read_csv(csv_out, index_col=0).to_numpy(), frame.to_numpy(), atol=1e-5)
    assert main([*args[:3], "--prepared", str(tmp_path), "--out", str(csv_out)]) == 2
    assert "not a prepared expression folder" in capsys.readouterr().err


def test_written_csv_round_trips(setup, tmp_path):
    cohort, prepared = setup
    aligned = align_expression(cohort_table(cohort, cohort.samples[:2], cohort.genes), prepared.scaler)
    write_aligned(aligned, tmp_path / "x.tsv.gz")
    back = pd.read_csv(tmp_path / "x.tsv.gz", sep="\t", index_col="sample_id")
    np.testing.assert_allclose(back.to_numpy(), aligned.matrix, rtol=1e-5)
    assert (tmp_path / "x.coverage.json").exists()
