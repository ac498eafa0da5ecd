"""prepare-expression with bad input: a duplicated gene is named by its lines (or summed when asked, and
reported), options are refused before any file is read, and nothing is written on a refusal."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.data.test_expression import Cohort, make_cohort
from training.data.expression import load_prepared, prepare_expression
from training.data.gct_writer import write_gct
from training.data.genes import ExpressionError


@pytest.fixture
def duplicated(tmp_path) -> tuple[Cohort, int]:
    """The cohort's GCT again, with gene 5's row repeated (other values) as the last row."""
    cohort = make_cohort(tmp_path / "cohort")
    genes = [*cohort.genes, cohort.genes[5]]
    extra = np.full((1, len(cohort.samples)), 7.0)
    values = np.vstack([cohort.values, extra])
    write_gct(cohort.gct, genes=genes, descriptions=[f"SYM{i}" for i in range(len(genes))], samples=cohort.samples,
              values=values)
    return cohort, len(genes) + 3  # the repeated row's line: three header lines, then the genes


def test_a_gene_on_two_rows_is_an_error_naming_both_lines(duplicated, tmp_path):
    cohort, last_line = duplicated
    gene = cohort.genes[5]
    with pytest.raises(ExpressionError) as refusal:
        prepare_expression(cohort.config(tmp_path / "out"))
    message = str(refusal.value)
    assert str(cohort.gct) in message and gene in message
    assert f"line {5 + 4} ({gene})" in message and f"line {last_line} ({gene})" in message
    assert "--duplicate-genes sum" in message
    assert not (tmp_path / "out").exists()


def test_with_the_sum_rule_the_rows_are_added_and_the_report_says_so(duplicated, tmp_path):
    cohort, last_line = duplicated
    gene = cohort.genes[5]
    report = prepare_expression(cohort.config(tmp_path / "out", duplicate_genes="sum"))
    entry = report["genes"]["duplicates_in_gct"]
    assert entry["rule"] == "sum" and entry["count"] == 1
    assert entry["genes"][gene] == {"lines": [9, last_line], "names": [gene, gene]}
    prepared = load_prepared(tmp_path / "out")
    column = prepared.genes.index(gene)
    scaler = prepared.scaler
    first = prepared.samples["sample_id"].iloc[0]
    expected = np.log1p(cohort.tpm(gene, first) + 7.0)
    stored = prepared.matrix[0, column] * scaler.sd[column] + scaler.mean[column]
    assert stored == pytest.approx(expected, rel=1e-5)


def test_a_gene_matched_without_version_to_two_rows_is_ambiguous(tmp_path):
    cohort = make_cohort(tmp_path / "cohort")
    base = cohort.genes[5].rsplit(".", 1)[0]
    genes = [*cohort.genes, f"{base}.9"]  # another version of gene 5
    values = np.vstack([cohort.values, np.ones((1, len(cohort.samples)))])
    write_gct(cohort.gct, genes=genes, descriptions=["d"] * len(genes), samples=cohort.samples, values=values)
    cohort.gene_list.write_text("Gene\n" + "".join(f"rna_{g}\n" for g in [f"{base}.7", *cohort.genes[:4]]))
    with pytest.raises(ExpressionError, match=rf"gene {base}\.7 is on 2 rows: line 9 \(.*\), line {len(genes) + 3}"):
        prepare_expression(cohort.config(tmp_path / "out"))


@pytest.mark.parametrize(("change", "message"), [
    ({"sd_floor": -1.0}, "--sd-floor -1.0: give a positive number"),
    ({"sd_floor": float("nan")}, "--sd-floor nan"),
    ({"duplicate_genes": "keep-first"}, "--duplicate-genes 'keep-first'"),
    ({"seed": -5}, "--seed -5"),
])
def test_options_are_refused_before_any_file_is_read(tmp_path, change, message):
    cohort = make_cohort(tmp_path / "cohort")
    cohort.gct.write_bytes(b"not read: an option is wrong first")  # would be a GCT error if it were read
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare_expression(cohort.config(tmp_path / "out", **change))


@pytest.mark.parametrize("which", ["gct", "attributes", "genes"])
def test_a_missing_input_is_named_before_any_work(tmp_path, which):
    cohort = make_cohort(tmp_path / "cohort")
    config = cohort.config(tmp_path / "out", **{which: tmp_path / "absent.txt"})
    with pytest.raises(ExpressionError, match=rf"absent.txt: --{which} file not found"):
        prepare_expression(config)
