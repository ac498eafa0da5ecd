"""GCT 1.2: what write_gct writes, the streaming reader reads back; malformed files are named by line."""

from __future__ import annotations

import gzip
import tracemalloc

import numpy as np
import pytest

from training.data.gct import GctFormatError, iter_gct_names, read_gct, read_gct_header
from training.data.gct_writer import write_gct

GENES = ["ENSG00000223972.5", "ENSG00000227232.5", "ENSG00000186092.4", "ENSG00000187634.11"]
SYMBOLS = ["DDX11L1", "WASH7P", "OR4F5", "SAMD11"]
SAMPLES = ["GTEX-1117F-0226-SM-5GZZ7", "GTEX-1117F-0426-SM-5EGHI", "GTEX-111CU-1826-SM-5GZYN"]
# At most four significant digits, so the writer's default %.4g loses nothing.
VALUES = np.array([[0.0, 1.5, 12.25], [3.0, 0.0, 0.125], [1234.0, 7.5, 0.0], [9.875, 42.0, 100.0]])


def write_text(path, text: str, *, gz: bool = False):
    if gz:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def small_gct(tmp_path, rows: list[str], *, dims: str | None = None, header: str | None = None):
    header = header or "Name\tDescription\tS1\tS2"
    dims = dims or f"{len(rows)}\t2"
    return write_text(
        tmp_path / "bad.gct", "#1.2\n" + dims + "\n" + header + "\n" + "".join(r + "\n" for r in rows)
    )


@pytest.mark.parametrize("name", ["expr.gct", "expr.gct.gz"])
def test_written_gct_round_trips(tmp_path, name):
    path = write_gct(tmp_path / name, genes=GENES, descriptions=SYMBOLS, samples=SAMPLES, values=VALUES)
    with open(path, "rb") as handle:
        assert (handle.read(2) == b"\x1f\x8b") == name.endswith(".gz")

    header = read_gct_header(path)
    assert (header.n_genes, header.n_samples, header.samples) == (4, 3, tuple(SAMPLES))

    data = read_gct(path)
    assert data.genes == GENES
    assert data.descriptions == SYMBOLS
    assert data.samples == SAMPLES
    assert data.values.dtype == np.float32
    np.testing.assert_array_equal(data.values, VALUES.astype(np.float32))
    assert data.rows_in_file == 4
    assert list(iter_gct_names(path)) == list(zip(GENES, SYMBOLS, strict=True))


def test_reader_keeps_chosen_samples_in_the_order_asked_and_chosen_genes(tmp_path):
    path = write_gct(tmp_path / "e.gct.gz", genes=GENES, descriptions=SYMBOLS, samples=SAMPLES, values=VALUES)
    data = read_gct(path, samples=[SAMPLES[2], SAMPLES[0]], keep_gene=lambda name: name.endswith(".5"))
    assert data.genes == GENES[:2]
    assert data.samples == [SAMPLES[2], SAMPLES[0]]
    np.testing.assert_array_equal(data.values, VALUES[:2][:, [2, 0]].astype(np.float32))
    assert data.rows_in_file == 4

    one = read_gct(path, samples=[SAMPLES[1]], keep_gene=lambda name: name == GENES[3])
    assert one.values.shape == (1, 1) and one.values[0, 0] == 42.0
    with pytest.raises(ValueError, match="not in the GCT"):
        read_gct(path, samples=["GTEX-NOPE-0001"])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.gct: file not found"):
        read_gct(tmp_path / "nothere.gct")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("Name\tDescription\tS1\n", 1, "first line should be '#1.2'"),
        ("#1.3\n1\t1\nName\tDescription\tS1\nG\tg\t1\n", 1, "first line should be '#1.2'"),
        ("#1.2\none two\nName\tDescription\tS1\n", 2, "two counts"),
        ("#1.2\n1\t1\nGene\tSymbol\tS1\nG\tg\t1\n", 3, "should start 'Name\\\\tDescription'"),
        (
            "#1.2\n1\t2\nName\tDescription\tS1\nG\tg\t1\n",
            3,
            "declares 2 samples but the column header names 1",
        ),
        (
            "#1.2\n1\t2\nName\tDescription\tS1\tS1\nG\tg\t1\t2\n",
            3,
            "duplicate sample ID 'S1' in columns 3 and 4",
        ),
    ],
)
def test_bad_header_lines_are_named(tmp_path, text, line, message):
    path = write_text(tmp_path / "bad.gct", text)
    with pytest.raises(GctFormatError, match=message) as raised:
        read_gct(path)
    assert raised.value.line == line
    assert f"bad.gct, line {line}:" in str(raised.value)


def test_row_with_wrong_number_of_values_is_named(tmp_path):
    path = small_gct(tmp_path, ["G1\tg1\t1\t2", "G2\tg2\t1\t2\t3", "G3\tg3\t1\t2"])
    with pytest.raises(GctFormatError, match=r"line 5: 3 values, expected 2"):
        read_gct(path)


def test_declared_gene_count_must_match_the_rows(tmp_path):
    path = small_gct(tmp_path, ["G1\tg1\t1\t2", "G2\tg2\t1\t2"], dims="3\t2")
    with pytest.raises(GctFormatError, match="line 2: declares 3 genes but the file has 2 gene rows"):
        read_gct(path)
    # Also when the rows are not parsed at all (symbol mapping reads names only).
    with pytest.raises(GctFormatError, match="declares 3 genes"):
        list(iter_gct_names(path))


@pytest.mark.parametrize(
    ("value", "problem", "options"),
    [
        ("abc", "'abc' is not a number", {}),
        ("nan", "'nan' is not a finite number", {}),
        ("-0.5", "'-0.5' is negative", {"nonnegative": True}),
    ],
)
def test_bad_values_name_gene_sample_and_line(tmp_path, value, problem, options):
    path = small_gct(tmp_path, ["G1\tg1\t1\t2", f"G2\tg2\t3\t{value}"])
    with pytest.raises(GctFormatError, match=f"line 5: gene G2, sample S2: value {problem}"):
        read_gct(path, **options)


def test_a_bad_value_names_its_sample_when_samples_are_asked_out_of_file_order(tmp_path):
    path = small_gct(tmp_path, ["G1\tg1\t1\t2", "G2\tg2\tx3\t4"])
    with pytest.raises(GctFormatError, match="line 5: gene G2, sample S1: value 'x3' is not a number"):
        read_gct(path, samples=["S2", "S1"])


def test_bad_values_in_rows_that_are_not_kept_are_not_parsed(tmp_path):
    path = small_gct(tmp_path, ["G1\tg1\t1\t2", "G2\tg2\t3\tabc"])
    data = read_gct(path, keep_gene=lambda name: name == "G1")
    assert data.genes == ["G1"]


def test_windows_line_ends_and_concatenated_gzip_members_are_read(tmp_path):
    text = "#1.2\r\n2\t2\r\nName\tDescription\tS1\tS2\r\nG1\tg1\t1.5\t2\r\nG2\tg2\t3\t4.25\r\n"
    crlf = write_text(tmp_path / "crlf.gct", text)
    data = read_gct(crlf)
    assert data.samples == ["S1", "S2"] and data.descriptions == ["g1", "g2"]
    np.testing.assert_array_equal(data.values, [[1.5, 2], [3, 4.25]])

    # pigz and bgzip write several gzip members; the file is their concatenation.
    lines = text.replace("\r", "").encode()
    split = lines.index(b"G2")
    (tmp_path / "multi.gct.gz").write_bytes(gzip.compress(lines[:split]) + gzip.compress(lines[split:]))
    np.testing.assert_array_equal(read_gct(tmp_path / "multi.gct.gz").values, data.values)


def test_a_highly_compressed_gct_is_inflated_in_bounded_blocks(tmp_path):
    genes = [f"G{i}" for i in range(300)]
    samples = [f"S{i}" for i in range(2_000)]
    values = np.zeros((300, 2_000))
    values[-1, -1] = 7.0
    path = write_gct(tmp_path / "zeros.gct.gz", genes=genes, descriptions=genes, samples=samples, values=values)
    assert path.stat().st_size < 20_000  # one read of it inflates to 1.2 MB: more than one 1 MiB block
    data = read_gct(path, samples=samples[-3:], keep_gene=lambda name: name in {"G0", "G299"})
    np.testing.assert_array_equal(data.values, [[0, 0, 0], [0, 0, 7]])
    assert data.rows_in_file == 300


def test_truncated_gzip_is_reported_not_silently_short(tmp_path):
    path = write_gct(tmp_path / "e.gct.gz", genes=GENES, descriptions=SYMBOLS, samples=SAMPLES, values=VALUES)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) - 12])  # drop the gzip trailer and a little data
    with pytest.raises(GctFormatError, match=r"e.gct.gz, line \d+: the file is truncated or corrupt"):
        read_gct(path)


def _large_gct(path, n_genes: int, n_samples: int):
    """A plain GCT whose row i holds template row i % 7 (fast to write; values stay checkable)."""
    rng = np.random.default_rng(0)
    templates = np.round(rng.gamma(0.5, 20.0, size=(7, n_samples)), 2)
    texts = ["\t".join(f"{v:g}" for v in row) for row in templates]
    samples = [f"GTEX-S{i:04d}-0001" for i in range(n_samples)]
    with open(path, "w") as handle:
        handle.write(f"#1.2\n{n_genes}\t{n_samples}\nName\tDescription\t" + "\t".join(samples) + "\n")
        handle.writelines(f"ENSG{i:011d}.1\tSYM{i}\t{texts[i % 7]}\n" for i in range(n_genes))
    return samples, templates


def test_streaming_reader_memory_is_the_kept_part_not_the_file(tmp_path):
    n_genes, n_samples = 20_000, 400
    samples, templates = _large_gct(tmp_path / "big.gct", n_genes, n_samples)
    wanted_samples = samples[::4]  # 100
    wanted_genes = {f"ENSG{i:011d}.1" for i in range(0, n_genes, 10)}  # 2,000

    tracemalloc.start()
    try:
        data = read_gct(
            tmp_path / "big.gct",
            samples=wanted_samples,
            keep_gene=wanted_genes.__contains__,
            expected_genes=len(wanted_genes),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    full_matrix = n_genes * n_samples * 4  # float32: 32 MB
    kept = len(wanted_genes) * len(wanted_samples) * 4  # 0.8 MB
    assert data.values.shape == (2_000, 100)
    assert peak < full_matrix / 10, f"peak {peak / 1e6:.1f} MB"
    assert peak < 3 * kept, f"peak {peak / 1e6:.2f} MB for {kept / 1e6:.2f} MB kept"
    np.testing.assert_array_equal(data.values[3], templates[30 % 7, ::4].astype(np.float32))
