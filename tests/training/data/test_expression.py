"""prepare-expression: GTEx GCT + attributes → the prepared folder of docs/contracts.md, and load_prepared."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.cli.rnagan import main
from training.data.expression import PrepareConfig, load_prepared, prepare_expression
from training.data.gct import GctFormatError
from training.data.gct_writer import write_gct
from training.data.genes import ExpressionError, strip_version
from training.data.samples import assign_splits, read_sample_attributes, slide_id_from_sample, split_counts
from training.data.scaler import load_scaler

TISSUES = {"Lung": 10, "Brain - Cortex": 8, "Liver": 5}
WANTED = ("Lung", "Brain - Cortex")


@dataclass
class Cohort:
    gct: Path
    attributes: Path
    gene_list: Path
    genes: list[str]  # GCT row names
    samples: list[str]  # GCT columns
    tissue_of: dict[str, str]
    values: np.ndarray  # genes × samples TPM, exactly as written

    def config(self, out: Path, **changes) -> PrepareConfig:
        base = PrepareConfig(
            gct=self.gct, attributes=self.attributes, tissues=WANTED, genes=self.gene_list, out=out
        )
        return replace(base, **changes)

    def tpm(self, gene: str, sample: str) -> float:
        return float(self.values[self.genes.index(gene), self.samples.index(sample)])


def make_cohort(folder: Path, *, n_genes: int = 30, listed: int = 25, seed: int = 0) -> Cohort:
    """A tiny GTEx-like cohort: 3 tissues, 2 GCT samples without attributes, 3 attribute rows without RNA."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tissue_of: dict[str, str] = {}
    for t, (tissue, count) in enumerate(TISSUES.items()):
        for k in range(count):
            tissue_of[f"GTEX-{t}{k:03d}-0{t}26-SM-{k}A{t}"] = tissue
    samples = list(tissue_of) + ["GTEX-XTRA1-0001-SM-1", "GTEX-XTRA2-0001-SM-2"]
    samples = [samples[i] for i in rng.permutation(len(samples))]  # columns not grouped by tissue
    genes = [f"ENSG{i:011d}.{i % 4 + 1}" for i in range(n_genes)]
    values = rng.integers(0, 10_000, size=(n_genes, len(samples))) / 100  # ≤ 4 significant digits
    values[0] = np.where(np.arange(len(samples)) % 2, 1.0, 0.0)  # a gene of 0 and 1 TPM only
    values[1] = 5.0  # a constant gene
    gct = write_gct(
        folder / "expr.gct.gz",
        genes=genes,
        descriptions=[f"SYM{i}" for i in range(n_genes)],
        samples=samples,
        values=values,
    )
    rows = [(s, t.split(" - ")[0], t) for s, t in tissue_of.items()]
    rows += [(f"GTEX-NORNA-000{i}-SM-9", "Lung", "Lung") for i in range(3)]
    attributes = folder / "attributes.txt"
    pd.DataFrame(rows, columns=["SAMPID", "SMTS", "SMTSD"]).assign(SMATSSCR="0").to_csv(
        attributes, sep="\t", index=False
    )
    gene_list = folder / "genes.csv"
    pd.DataFrame({"Gene": ["rna_" + g for g in genes[:listed]]}).to_csv(gene_list, index=False)
    return Cohort(gct, attributes, gene_list, genes, samples, tissue_of, values)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Cohort:
    return make_cohort(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def prepared(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "prep"
    report = prepare_expression(cohort.config(out, seed=7))
    return out, report


def test_prepared_folder_holds_exactly_the_contract_files(cohort, prepared):
    out, report = prepared
    assert sorted(p.name for p in out.iterdir()) == [
        "genes.txt",
        "matrix.npy",
        "report.json",
        "scaler.npz",
        "splits.csv",
    ]
    matrix = np.load(out / "matrix.npy")
    splits = pd.read_csv(out / "splits.csv")
    genes = (out / "genes.txt").read_text().splitlines()
    assert matrix.dtype == np.float32 and matrix.shape == (18, 25)
    assert list(splits.columns) == ["sample_id", "slide_id", "tissue", "split"]
    assert genes == cohort.genes[:25]  # the list's IDs, `rna_` dropped, in list order
    # Tissues in the order asked, samples in GCT column order within each.
    lung = [s for s in cohort.samples if cohort.tissue_of.get(s) == "Lung"]
    brain = [s for s in cohort.samples if cohort.tissue_of.get(s) == "Brain - Cortex"]
    assert splits["sample_id"].tolist() == lung + brain
    assert splits["slide_id"].tolist() == [slide_id_from_sample(s) for s in lung + brain]
    assert set(splits["split"]) == {"train", "val", "test"}
    with np.load(out / "scaler.npz") as scaler:
        assert {"genes", "mean", "sd"} <= set(scaler.files)
        assert scaler["genes"].tolist() == genes

    assert report["samples"]["by_tissue"] == {
        "Lung": {"train": 6, "val": 2, "test": 2, "total": 10},
        "Brain - Cortex": {"train": 5, "val": 2, "test": 1, "total": 8},
    }
    assert report["samples"]["by_split"] == {"train": 11, "val": 4, "test": 3}
    assert report["samples_in_gct_not_in_attributes"]["count"] == 2
    assert report["samples_in_attributes_not_in_gct"]["count"] == 3
    assert report["genes"]["matched"] == 25 and report["genes"]["missing"]["count"] == 0


def test_slide_id_is_the_tissue_sample_id():
    assert slide_id_from_sample("GTEX-1117F-0226-SM-5GZZ7") == "GTEX-1117F-0226"
    assert slide_id_from_sample("GTEX-1117F-0011-R10a-SM-AHZ7F") == "GTEX-1117F-0011"


def test_matrix_is_log1p_z_scored_with_training_statistics_only(cohort, prepared):
    out, _ = prepared
    data = load_prepared(out)
    raw = np.array(
        [[cohort.tpm(g, s) for g in data.genes] for s in data.samples["sample_id"]], dtype=np.float32
    )
    logged = np.log1p(raw).astype(np.float64)
    train = (data.samples["split"] == "train").to_numpy()

    mean, sd = logged[train].mean(axis=0), logged[train].std(axis=0)
    sd_floored = np.maximum(sd, 0.01)
    np.testing.assert_allclose(data.scaler.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(data.scaler.sd, sd_floored, rtol=1e-6)
    np.testing.assert_allclose(data.matrix, (logged - mean) / sd_floored, atol=1e-5)
    # With validation and test samples included the statistics would differ (so this is a real check).
    assert np.abs(logged.mean(axis=0) - mean)[2:].min() > 1e-3
    assert np.abs(data.matrix[train].mean(axis=0)).max() < 1e-5


def test_zero_tpm_and_one_tpm_stay_apart_and_a_constant_gene_is_floored(prepared):
    out, report = prepared
    data = load_prepared(out)
    gene0 = data.matrix[:, 0] * data.scaler.sd[0] + data.scaler.mean[0]  # back to log1p TPM
    assert set(np.round(gene0, 5)) == {0.0, round(float(np.log(2)), 5)}  # log1p, not log with 0 → 1
    assert data.scaler.sd[1] == pytest.approx(0.01)  # all 5 TPM: sd 0, floored
    assert np.all(data.matrix[:, 1] == 0)
    assert report["scaler"]["genes_at_floor"] == 1


@pytest.mark.parametrize(
    ("n", "counts"),
    [
        (1, [1, 0, 0]),
        (2, [1, 1, 0]),
        (3, [1, 1, 1]),
        (4, [2, 1, 1]),
        (5, [3, 1, 1]),
        (7, [4, 2, 1]),
        (10, [6, 2, 2]),
        (562, [337, 113, 112]),
    ],
)
def test_split_counts_are_60_20_20_with_one_in_each_split_from_three_samples(n, counts):
    assert split_counts(n, (0.6, 0.2, 0.2)) == counts


def _samples_frame(counts: dict[str, int]) -> pd.DataFrame:
    rows = [(f"{tissue[:4]}-{k:03d}", tissue) for tissue, n in counts.items() for k in range(n)]
    return pd.DataFrame(rows, columns=["sample_id", "tissue"])


def test_split_is_stratified_deterministic_and_independent_of_row_order():
    frame = _samples_frame({"Lung": 50, "Liver": 3, "Brain - Cortex": 20})
    split = assign_splits(frame, (0.6, 0.2, 0.2), seed=3)
    table = pd.crosstab(frame["tissue"], split)
    assert table.loc["Lung"].to_dict() == {"train": 30, "val": 10, "test": 10}
    assert table.loc["Brain - Cortex"].to_dict() == {"train": 12, "val": 4, "test": 4}
    assert table.loc["Liver"].to_dict() == {"train": 1, "val": 1, "test": 1}

    assert assign_splits(frame, (0.6, 0.2, 0.2), seed=3).equals(split)
    shuffled = frame.sample(frac=1, random_state=1)
    assert assign_splits(shuffled, (0.6, 0.2, 0.2), seed=3).sort_index().equals(split)
    only_lung = frame[frame["tissue"] == "Lung"]
    assert assign_splits(only_lung, (0.6, 0.2, 0.2), seed=3).equals(split[only_lung.index])
    assert not assign_splits(frame, (0.6, 0.2, 0.2), seed=4).equals(split)


def test_same_seed_gives_the_same_prepared_folder(cohort, prepared, tmp_path):
    first, _ = prepared
    again = tmp_path / "again"
    prepare_expression(cohort.config(again, seed=7))
    assert (again / "splits.csv").read_bytes() == (first / "splits.csv").read_bytes()
    assert np.array_equal(np.load(again / "matrix.npy"), np.load(first / "matrix.npy"))
    prepare_expression(cohort.config(tmp_path / "other", seed=8))
    assert (tmp_path / "other" / "splits.csv").read_bytes() != (first / "splits.csv").read_bytes()


def test_genes_match_without_version_and_the_report_says_how(cohort, tmp_path):
    listed = [cohort.genes[0], strip_version(cohort.genes[2]), cohort.genes[3].split(".")[0] + ".99"]
    listed += cohort.genes[4:25]
    genes_file = tmp_path / "genes.txt"
    genes_file.write_text("\n".join(listed) + "\n")
    report = prepare_expression(cohort.config(tmp_path / "prep", genes=genes_file, seed=7))
    assert report["genes"]["matched"] == 24
    assert report["genes"]["matched_without_version"] == {
        "count": 2,
        "pairs": {listed[1]: cohort.genes[2], listed[2]: cohort.genes[3]},
    }
    data = load_prepared(tmp_path / "prep")
    assert data.genes == tuple(listed)
    sample = data.samples["sample_id"][0]
    back = data.matrix[0, 2] * data.scaler.sd[2] + data.scaler.mean[2]
    assert back == pytest.approx(np.log1p(cohort.tpm(cohort.genes[3], sample)), rel=1e-5)


def test_a_poorly_matched_gene_list_is_an_error_unless_forced(cohort, tmp_path):
    listed = cohort.genes[:20] + [f"ENSG9999999999{i}.1" for i in range(5)]  # 80 % present
    genes_file = tmp_path / "genes.txt"
    genes_file.write_text("\n".join(listed))
    with pytest.raises(ExpressionError, match=r"only 20 of 25 genes .* \(80\.0%\).*--force"):
        prepare_expression(cohort.config(tmp_path / "prep", genes=genes_file))
    assert not (tmp_path / "prep").exists()

    report = prepare_expression(cohort.config(tmp_path / "prep", genes=genes_file, force=True))
    assert report["genes"]["missing"] == {"count": 5, "ids": listed[20:]}
    data = load_prepared(tmp_path / "prep")
    assert np.all(data.matrix[:, 20:] == 0)  # the training mean, after z-scoring
    assert np.abs(data.matrix[:, 2:20]).max() > 0.1
    assert load_scaler(tmp_path / "prep").observed.tolist() == [True] * 20 + [False] * 5


def test_a_tissue_without_samples_lists_the_available_ones(cohort, tmp_path):
    with pytest.raises(
        ExpressionError,
        match=r"'Pancreas'; available \(SMTSD, samples\): 'Brain - Cortex' \(8\), "
        r"'Liver' \(5\), 'Lung' \(10\)",
    ):
        prepare_expression(cohort.config(tmp_path / "prep", tissues=("Lung", "Pancreas")))


def test_attribute_problems_are_named(tmp_path):
    no_tissue = tmp_path / "a.txt"
    no_tissue.write_text("SAMPID\tSMTS\nGTEX-1-1\tLung\n")
    with pytest.raises(ExpressionError, match="a.txt: sample attributes lack column\\(s\\) SMTSD"):
        read_sample_attributes(no_tissue)
    duplicated = tmp_path / "b.txt"
    duplicated.write_text("SAMPID\tSMTSD\nGTEX-1-1\tLung\nGTEX-1-2\tLung\nGTEX-1-1\tLiver\n")
    with pytest.raises(ExpressionError, match=r"b.txt: duplicate sample ID 'GTEX-1-1' on lines \[2, 4\]"):
        read_sample_attributes(duplicated)
    with pytest.raises(FileNotFoundError, match="c.txt: file not found"):
        read_sample_attributes(tmp_path / "c.txt")


def test_a_bad_value_names_gene_and_sample_and_leaves_no_output(cohort, tmp_path):
    column = next(i for i, s in enumerate(cohort.samples) if cohort.tissue_of.get(s) == "Lung")
    values = cohort.values.copy()
    values[5, column] = -2.0
    bad = write_gct(
        tmp_path / "bad.gct",
        genes=cohort.genes,
        descriptions=cohort.genes,
        samples=cohort.samples,
        values=values,
    )
    with pytest.raises(
        GctFormatError,
        match=f"line 9: gene {cohort.genes[5]}, sample {cohort.samples[column]}: value '-2' is negative",
    ):
        prepare_expression(cohort.config(tmp_path / "prep", gct=bad))
    assert list(tmp_path.iterdir()) == [bad]  # neither the folder nor a temporary one


def test_existing_output_is_replaced_only_when_asked(cohort, prepared, tmp_path):
    out = tmp_path / "prep"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExpressionError, match="output exists and is not empty .*--overwrite"):
        prepare_expression(cohort.config(out))
    prepare_expression(cohort.config(out, overwrite=True))
    assert not (out / "keep.txt").exists() and (out / "matrix.npy").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prep"]


def test_load_prepared_gives_rows_by_sample_slide_split_and_tissue(prepared):
    out, _ = prepared
    data = load_prepared(out)
    first = data.samples.iloc[4]
    assert data.row_of_sample(first["sample_id"]) == 4
    assert data.row_of_slide(first["slide_id"]) == 4
    assert len(data.rows(split="train")) == 11
    lung_test = data.rows(split="test", tissue="Lung")
    assert len(lung_test) == 2 and set(data.samples["tissue"][lung_test]) == {"Lung"}
    with pytest.raises(KeyError, match="GTEX-NOPE"):
        data.row_of_slide("GTEX-NOPE")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda d: (d / "genes.txt").write_text("\n".join((d / "genes.txt").read_text().split()[:-1])),
            "matrix is 18 × 25 but splits.csv has 18 samples and genes.txt 24 genes",
        ),
        (
            lambda d: (d / "splits.csv").write_text(
                (d / "splits.csv").read_text().replace("split", "fold", 1)
            ),
            "columns should be",
        ),
        (lambda d: (d / "scaler.npz").unlink(), "missing scaler.npz"),
        (lambda d: np.save(d / "matrix.npy", np.zeros((18, 25))), "expected a 2-D float32 matrix"),
    ],
)
def test_load_prepared_refuses_files_that_disagree(prepared, tmp_path, damage, message):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(prepared[0], copy)
    damage(copy)
    with pytest.raises(ExpressionError, match=message):
        load_prepared(copy)


def test_command_line(cohort, tmp_path, capsys):
    args = [
        "prepare-expression",
        "--gct",
        str(cohort.gct),
        "--attributes",
        str(cohort.attributes),
        "--tissues",
        "Lung",
        "Brain - Cortex",
        "--genes",
        str(cohort.gene_list),
        "--out",
        str(tmp_path / "p"),
        "--seed",
        "7",
        "--split",
        "0.5",
        "0.25",
        "0.25",
    ]
    assert main(args) == 0
    assert "Lung: train 5, val 3, test 2" in capsys.readouterr().out
    assert load_prepared(tmp_path / "p").report["config"]["split"] == [0.5, 0.25, 0.25]

    assert main(args) == 2
    assert "rnagan prepare-expression: error:" in capsys.readouterr().err
    assert main([*args[:-8], "--tissues", "Pancreas", "--out", str(tmp_path / "q")]) == 2
    assert "available (SMTSD, samples)" in capsys.readouterr().err


def test_a_synthetic_cohort_prepares_end_to_end(tmp_path, shared_data):
    paper_list = shared_data / "protein_coding_genes.csv"
    cohort = tmp_path / "cohort"
    synth = [
        "synth-cohort",
        "--out",
        str(cohort),
        "--samples-per-tissue",
        "5",
        "--genes",
        "300",
        "--slide-size",
        "256",
        "--workers",
        "1",
        "--gene-list",
        str(paper_list),
    ]
    assert main(synth) == 0
    genes = tmp_path / "genes.csv"  # the paper's list cut to the 300 genes the cohort has, same format
    genes.write_text("\n".join(paper_list.read_text().splitlines()[:301]) + "\n")
    prepare = [
        "prepare-expression",
        "--gct",
        str(cohort / "expression.gct.gz"),
        "--attributes",
        str(cohort / "sample_attributes.txt"),
        "--tissues",
        "Lung",
        "Brain - Cortex",
        "--genes",
        str(genes),
        "--out",
        str(tmp_path / "prepared"),
    ]
    assert main(prepare) == 0

    data = load_prepared(tmp_path / "prepared")
    assert data.matrix.shape == (10, 300) and np.isfinite(data.matrix).all()
    assert data.report["genes"]["matched_exact"] == 300
    assert data.report["samples"]["by_tissue"]["Lung"] == {"train": 3, "val": 1, "test": 1, "total": 5}
    attributes = pd.read_csv(cohort / "sample_attributes.txt", sep="\t")
    assert dict(zip(data.samples["sample_id"], data.samples["tissue"], strict=True)) == dict(
        zip(attributes["SAMPID"], attributes["SMTSD"], strict=True)
    )
    programs = pd.read_csv(cohort / "programs.csv").set_index("sample_id")
    assert data.samples["slide_id"].tolist() == programs.loc[data.samples["sample_id"], "slide_id"].tolist()

    # The ground truth survives preparation: each tissue's own module is higher in that tissue.
    modules = pd.read_csv(cohort / "gene_modules.csv")
    for tissue in ("Lung", "Brain - Cortex"):
        columns = [
            data.genes.index(g) for g in modules.loc[modules["module"] == f"tissue:{tissue}", "gene_id"]
        ]
        own = data.rows(tissue=tissue)
        other = np.setdiff1d(np.arange(10), own)
        assert data.matrix[np.ix_(own, columns)].mean() > data.matrix[np.ix_(other, columns)].mean() + 1
