"""Sample-attribute tables and cohort tables for align-expression, drawn by Hypothesis, well-formed and
damaged: read exactly, or refused with a project error naming the file. Never another exception, never
a matrix that differs from what the file says."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training.data.align import align_expression, read_table
from training.data.samples import read_sample_attributes
from training.data.scaler import Scaler
from training.utils.errors import RnaganError

CELL = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=12)
SAMPID = st.from_regex(r"GTEX-[A-Z0-9]{4}-[0-9]{4}-SM-[A-Z0-9]{3}", fullmatch=True)
ATTRIBUTE_DAMAGES = ["none", "no-smtsd", "duplicate-sample", "short-row", "long-row", "not-utf8", "empty"]
FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def attribute_files(draw):
    samples = draw(st.lists(SAMPID, min_size=1, max_size=6, unique=True))
    tissues = [draw(CELL.map(str.strip).filter(lambda t: "\t" not in t)) for _ in samples]
    extra = draw(st.lists(st.sampled_from(["SMTS", "SMATSSCR", "SMNABTCH"]), unique=True, max_size=3))
    damage = draw(st.sampled_from(ATTRIBUTE_DAMAGES))
    header = ["SAMPID", "SMTSD", *extra]
    header = draw(st.permutations(header))
    rows = [{"SAMPID": s, "SMTSD": t, **{c: draw(CELL).replace("\t", " ") for c in extra}}
            for s, t in zip(samples, tissues, strict=True)]
    if damage == "no-smtsd":
        header = [c for c in header if c != "SMTSD"]
    if damage == "duplicate-sample":
        rows.append(dict(rows[0]))
    lines = ["\t".join(header)] + ["\t".join(r[c] for c in header) for r in rows]
    if damage == "short-row":
        lines[-1] = "\t".join(lines[-1].split("\t")[:-1]) if len(header) > 1 else ""
    if damage == "long-row":
        lines[-1] += "\textra\tfields"
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    data = (("\ufeff" if draw(st.booleans()) else "") + newline.join(lines) + newline).encode()
    if damage == "not-utf8":
        data = data.replace(b"SAMPID", b"SAMP\xffID", 1)
    if damage == "empty":
        data = b""
    short_is_blank = damage == "short-row" and len(header) == 1
    refused = damage != "none" and not short_is_blank
    kept = rows if damage != "short-row" else rows[:-1]
    return data, kept, refused


@FUZZ
@given(case=attribute_files())
def test_attribute_tables_are_read_exactly_or_refused(tmp_path, case):
    data, rows, refused = case
    path = tmp_path / "attributes.txt"
    path.write_bytes(data)
    if refused:
        with pytest.raises(RnaganError) as refusal:
            read_sample_attributes(path)
        assert str(path) in str(refusal.value)
        return
    table = read_sample_attributes(path)
    expected = [(r["SAMPID"], r["SMTSD"].strip()) for r in rows]
    assert list(zip(table["SAMPID"], table["SMTSD"], strict=True)) == expected


GENES = [f"ENSG{i:011d}.1" for i in range(8)]
SCALER = Scaler(tuple(GENES), np.zeros(len(GENES)), np.ones(len(GENES)), np.ones(len(GENES), dtype=bool))
TPM = st.one_of(st.integers(0, 10**6).map(str), st.floats(0, 1e300, allow_nan=False).map(repr),
                st.just(""), st.just("NaN"))
TABLE_DAMAGES = ["none", "duplicate-gene", "other-version", "text", "inf", "negative"]


@st.composite
def cohort_tables(draw):
    genes = draw(st.lists(st.sampled_from(GENES), min_size=1, max_size=len(GENES), unique=True))
    unknown = draw(st.lists(st.from_regex(r"ENSG9[0-9]{10}\.1", fullmatch=True), max_size=2, unique=True))
    samples = draw(st.lists(SAMPID, min_size=1, max_size=4, unique=True))
    labels = genes + unknown
    cells = [[draw(TPM) for _ in samples] for _ in labels]
    damage = draw(st.sampled_from(TABLE_DAMAGES))
    k = draw(st.integers(0, len(genes) - 1))
    if damage == "duplicate-gene":
        labels, cells = labels + [genes[k]], cells + [["1"] * len(samples)]
    elif damage == "other-version":
        labels, cells = labels + [genes[k].replace(".1", ".7")], cells + [["1"] * len(samples)]
    elif damage != "none":
        cells[k][0] = {"text": "1.2.3", "inf": "inf", "negative": "-3"}[damage]
    rows_are_genes = draw(st.booleans())
    if rows_are_genes:
        lines = [",".join(["gene", *samples])] + [",".join([g, *c]) for g, c in zip(labels, cells, strict=True)]
    else:
        lines = [",".join(["sample", *labels])]
        lines += [",".join([s, *(c[j] for c in cells)]) for j, s in enumerate(samples)]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = ("\ufeff" if draw(st.booleans()) else "") + newline.join(lines) + newline
    return text, genes, samples, cells, damage, rows_are_genes  # cells: every row, unknown genes too


@FUZZ
@given(case=cohort_tables())
def test_cohort_tables_are_aligned_exactly_or_refused(tmp_path, case):
    text, genes, samples, cells, damage, rows_are_genes = case
    path = tmp_path / "cohort.csv"
    path.write_text(text, encoding="utf-8")
    orientation = "genes-rows" if rows_are_genes else "genes-columns"

    def align():
        return align_expression(read_table(path), SCALER, orientation=orientation, source=str(path))

    numbers_beside = [c[0] for c in cells if c[0] not in ("", "NaN", "1.2.3")]
    if damage == "text" and rows_are_genes and not numbers_beside and len(samples) > 1:
        # A column without a single number is a label column (a Description), not a sample: documented
        # and listed in the coverage report, never mixed into the matrix.
        aligned = align_expression(read_table(path), SCALER, orientation=orientation, source=str(path))
        assert samples[0] not in aligned.samples and aligned.coverage["ignored_columns"] == [samples[0]]
        return
    if damage != "none":
        with pytest.raises(RnaganError) as refusal:
            align()
        assert str(path) in str(refusal.value)
        return
    aligned = align()
    assert aligned.samples == samples
    expected = np.zeros((len(samples), len(GENES)))
    for gene, row in zip(genes, cells[: len(genes)], strict=True):
        values = np.array([float(v) if v not in ("", "NaN") else np.nan for v in row])
        expected[:, GENES.index(gene)] = np.where(np.isnan(values), 0.0, np.log1p(values))
    np.testing.assert_allclose(aligned.matrix, expected.astype(np.float32), rtol=1e-6)
