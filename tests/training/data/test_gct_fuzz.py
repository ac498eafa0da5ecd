"""GCT files drawn by Hypothesis, well-formed and damaged: read right, or refused naming file and line.

Never a traceback of another kind, never a matrix that differs from what the file says.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training.data.gct import GctFormatError, read_gct

# Written as text and read back: values are drawn as decimal strings, and the expected matrix is what
# float32 makes of them.
TPM = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.decimals(min_value=0, max_value=10**5, places=4, allow_nan=False).map(str),
    st.floats(min_value=0, max_value=3.0000000054977558e+38, allow_nan=False, allow_infinity=False, width=32).map(repr),
)
GENE = st.builds(lambda n, v: f"ENSG{n:011d}.{v}", st.integers(0, 10**6), st.integers(1, 30))
SAMPLE = st.builds(lambda a, b: f"GTEX-{a}-{b:04d}-SM-X", st.text("ABCDEFGH123", min_size=3, max_size=5),
                   st.integers(0, 9999))
# A damage and what it does: (kind, refused?). Duplicate gene rows are read as they are (the preparation
# refuses them, see test_prepare_refuses_duplicate_genes); every other damage is refused by the reader.
DAMAGES = ["none", "ragged-short", "ragged-long", "duplicate-gene", "not-a-number", "nan", "inf", "-inf",
           "negative", "beyond-float32", "version", "dims", "dims-count", "sample-count", "empty-sample",
           "duplicate-sample", "truncated-gzip", "empty-file"]


@dataclass
class GctCase:
    genes: list[str]
    samples: list[str]
    cells: list[list[str]]
    damage: str
    target: int  # the damaged row (0-based among gene rows)
    bom: bool
    crlf: bool
    gz: bool
    trailing_newline: bool

    def expected(self) -> np.ndarray:
        return np.array([[np.float32(float(c)) for c in row] for row in self.cells], dtype=np.float32)

    def render(self) -> bytes:
        genes, samples = list(self.genes), list(self.samples)
        rows = [list(r) for r in self.cells]
        first, dims = "#1.2", f"{len(genes)}\t{len(samples)}"
        damage, t = self.damage, self.target
        if damage == "ragged-short":
            rows[t] = rows[t][:-1]
        elif damage == "ragged-long":
            rows[t] = rows[t] + ["1"]
        elif damage == "duplicate-gene":
            genes.append(genes[t])
            rows.append(["0"] * len(samples))
            dims = f"{len(genes)}\t{len(samples)}"
        elif damage in ("not-a-number", "nan", "inf", "-inf", "negative", "beyond-float32"):
            rows[t][-1] = {"not-a-number": "1.2.3", "nan": "NaN", "inf": "inf", "-inf": "-Infinity",
                           "negative": "-0.5", "beyond-float32": "1e39"}[damage]
        elif damage == "version":
            first = "#1.3"
        elif damage == "dims":
            dims = "many\trows"
        elif damage == "dims-count":
            dims = f"{len(genes) + 1}\t{len(samples)}"
        elif damage == "sample-count":
            dims = f"{len(genes)}\t{len(samples) + 1}"
        elif damage == "empty-sample":
            samples[t % len(samples)] = ""
        elif damage == "duplicate-sample" and len(samples) > 1:
            samples[-1] = samples[0]
        lines = [first, dims, "\t".join(["Name", "Description", *samples])]
        lines += ["\t".join([g, f"SYM{i}", *r]) for i, (g, r) in enumerate(zip(genes, rows, strict=True))]
        newline = "\r\n" if self.crlf else "\n"
        text = newline.join(lines) + (newline if self.trailing_newline else "")
        data = (("\ufeff" if self.bom else "") + text).encode()
        if damage == "empty-file":
            data = b""
        if self.gz or damage == "truncated-gzip":
            data = gzip.compress(data, mtime=0)
            if damage == "truncated-gzip":
                data = data[: max(10, len(data) // 2)]
        return data

    @property
    def refused(self) -> bool:
        if self.damage == "duplicate-sample":
            return len(self.samples) > 1
        return self.damage not in ("none", "duplicate-gene")


@st.composite
def gct_cases(draw) -> GctCase:
    genes = draw(st.lists(GENE, min_size=1, max_size=6, unique_by=lambda g: g.split(".")[0]))
    samples = draw(st.lists(SAMPLE, min_size=1, max_size=5, unique=True))
    cells = [[draw(TPM) for _ in samples] for _ in genes]
    return GctCase(genes=genes, samples=samples, cells=cells, damage=draw(st.sampled_from(DAMAGES)),
                   target=draw(st.integers(0, len(genes) - 1)), bom=draw(st.booleans()),
                   crlf=draw(st.booleans()), gz=draw(st.booleans()), trailing_newline=draw(st.booleans()))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=gct_cases())
def test_a_gct_is_read_exactly_or_refused_naming_the_file(tmp_path, case):
    path = tmp_path / ("case.gct.gz" if case.gz else "case.gct")
    path.write_bytes(case.render())
    if case.refused:
        with pytest.raises(GctFormatError) as refusal:
            read_gct(path, nonnegative=True)
        assert str(refusal.value).startswith(str(path)), refusal.value
        return
    data = read_gct(path, nonnegative=True)
    assert data.samples == case.samples
    expected = case.expected()
    if case.damage == "duplicate-gene":
        assert data.genes == [*case.genes, case.genes[case.target]]
        expected = np.vstack([expected, np.zeros((1, len(case.samples)), dtype=np.float32)])
    else:
        assert data.genes == case.genes
    np.testing.assert_array_equal(data.values, expected)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=gct_cases().filter(lambda c: c.damage in ("ragged-short", "ragged-long", "not-a-number", "nan",
                                                      "inf", "-inf", "negative", "beyond-float32")))
def test_a_damaged_row_is_named_by_its_line(tmp_path, case):
    path = tmp_path / "case.gct"
    path.write_bytes(case.render())
    with pytest.raises(GctFormatError) as refusal:
        read_gct(path, nonnegative=True)
    assert refusal.value.line == case.target + 4  # three header lines, then the gene rows
    if case.damage == "beyond-float32":
        assert "too large" in str(refusal.value)
    elif case.damage == "negative":
        assert "negative" in str(refusal.value)
