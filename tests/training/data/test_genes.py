"""Gene IDs and gene lists: the paper's `rna_`-prefixed CSV, plain lists, and IDs without a version."""

from __future__ import annotations

import pytest

from training.data.genes import ExpressionError, read_gene_list, strip_version


def test_gene_list_forms(tmp_path, shared_data):
    plain = tmp_path / "plain.txt"
    plain.write_text("ENSG00000186092.4\nrna_ENSG00000187634.11\n\n  ENSG00000188976  \n")
    assert read_gene_list(plain) == ["ENSG00000186092.4", "ENSG00000187634.11", "ENSG00000188976"]
    csv = tmp_path / "genes.csv"
    csv.write_text("index,Gene\n0,rna_ENSG00000186092.4\n1,rna_ENSG00000187634.11\n")
    assert read_gene_list(csv) == ["ENSG00000186092.4", "ENSG00000187634.11"]
    paper = read_gene_list(shared_data / "protein_coding_genes.csv")
    assert len(paper) == 19_198 and paper[0] == "ENSG00000186092.4"

    assert strip_version("ENSG00000186092.4") == "ENSG00000186092"
    assert strip_version("ENSG00000182378.13_PAR_Y") == "ENSG00000182378_PAR_Y"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00\x81binary", "gene list is unreadable"),
        (b"", "gene list is empty"),
        (b"Gene\n", "header but no gene IDs"),
        (b"id,name\n1,a\n", "none is named 'Gene'"),
        (b"Gene\nENSG1\nnot a gene\n", "line 3: 'not a gene' is not a gene ID"),
    ],
)
def test_unreadable_gene_lists_are_refused(tmp_path, content, message):
    path = tmp_path / "genes.csv"
    path.write_bytes(content)
    with pytest.raises(ExpressionError, match=message):
        read_gene_list(path)
