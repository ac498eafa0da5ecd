"""The synthetic cohort: GTEx-format files, known ground truth, deterministic, written atomically."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import openslide
import pandas as pd
import pytest

from training.cli.rnagan import main
from training.synthetic import cohort as synthetic
from training.synthetic.cohort import write_cohort
from training.synthetic.design import CohortConfig, cohort_gene_list, design_cohort
from training.synthetic.histology import PROGRAM_NAMES
from training.synthetic.morphometry import measure_programs, tissue_region

TABLES = ("expression.gct.gz", "sample_attributes.txt", "programs.csv", "gene_modules.csv", "cohort.json")
SAMPID = re.compile(r"^GTEX-[0-9A-Z]{5}-\d{4}-SM-[0-9A-Z]{5}$")


def small_config(shared_data: Path, **changes) -> CohortConfig:
    options = dict(samples_per_tissue=3, genes=500, slide_size=768, seed=11,
                   gene_list=shared_data / "protein_coding_genes.csv")
    return CohortConfig(**(options | changes))


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory, shared_data) -> Path:
    out = tmp_path_factory.mktemp("cohort") / "cohort"
    write_cohort(out, small_config(shared_data), workers=2)
    return out


def read_gct(path: Path) -> tuple[list[str], pd.DataFrame]:
    with gzip.open(path, "rt") as handle:
        header = [handle.readline().rstrip("\n") for _ in range(2)]
        frame = pd.read_csv(handle, sep="\t")
    return header, frame


def test_expression_is_gct_over_the_real_gene_ids(cohort_dir, shared_data):
    header, frame = read_gct(cohort_dir / "expression.gct.gz")
    samples = pd.read_csv(cohort_dir / "sample_attributes.txt", sep="\t")
    assert header == ["#1.2", f"500\t{len(samples)}"]
    assert list(frame.columns) == ["Name", "Description", *samples["SAMPID"]]
    genes = [line.removeprefix("rna_") for line in (shared_data / "protein_coding_genes.csv").read_text().split()[1:501]]
    assert frame["Name"].tolist() == genes
    assert frame["Name"].iloc[0] == "ENSG00000186092.4"
    assert frame["Description"].str.fullmatch(r"SYN\d{5}").all() and frame["Description"].is_unique
    values = frame.iloc[:, 2:].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all()
    # GTEx-like: many silent genes, a heavy upper tail.
    assert (values == 0).mean() > 0.1
    assert np.percentile(values, 99.5) > 100 * np.median(values[values > 0])


def test_sample_attributes_use_gtex_columns_and_ids(cohort_dir):
    attributes = pd.read_csv(cohort_dir / "sample_attributes.txt", sep="\t")
    assert {"SAMPID", "SMTS", "SMTSD"} <= set(attributes.columns)
    assert len(attributes) == 6 and attributes["SAMPID"].is_unique
    assert attributes["SAMPID"].str.match(SAMPID).all()
    assert sorted(set(zip(attributes["SMTS"], attributes["SMTSD"], strict=True))) == [
        ("Brain", "Brain - Cortex"), ("Lung", "Lung")]
    slides = sorted(p.stem for p in (cohort_dir / "slides").iterdir())
    assert slides == sorted("-".join(s.split("-")[:3]) for s in attributes["SAMPID"])


def test_slides_open_in_openslide_at_20x_with_glass_around_tissue(cohort_dir):
    programs = pd.read_csv(cohort_dir / "programs.csv")
    airspace = {}
    for row in programs.itertuples():
        with openslide.OpenSlide(cohort_dir / "slides" / f"{row.slide_id}.tiff") as slide:
            assert slide.dimensions == (768, 768)
            assert float(slide.properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(0.5)
            assert float(slide.properties[openslide.PROPERTY_NAME_OBJECTIVE_POWER]) == 20
            rgb = np.asarray(slide.read_region((0, 0), 0, slide.dimensions).convert("RGB"))
        border = np.concatenate([rgb[:16].reshape(-1, 3), rgb[-16:].reshape(-1, 3),
                                 rgb[:, :16].reshape(-1, 3), rgb[:, -16:].reshape(-1, 3)])
        assert border.min() > 215 and np.ptp(border.mean(axis=0)) < 6  # white, colourless glass
        region = tissue_region(rgb)
        assert 0.2 < region.mean() < 0.8
        # Not a rectangle: the tissue fills clearly less than its bounding box.
        rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
        assert region.sum() < 0.9 * (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
        airspace[row.tissue] = measure_programs(rgb, region=region)["airspace_fraction"]
    assert airspace["Lung"] > 0.4 > 0.2 > airspace["Brain - Cortex"]


def test_programs_and_modules_are_documented(cohort_dir):
    programs = pd.read_csv(cohort_dir / "programs.csv")
    attributes = pd.read_csv(cohort_dir / "sample_attributes.txt", sep="\t")
    assert list(programs.columns) == ["sample_id", "slide_id", "tissue", *PROGRAM_NAMES]
    assert programs["sample_id"].tolist() == attributes["SAMPID"].tolist()
    assert (programs["slide_id"] == programs["sample_id"].str.split("-").str[:3].str.join("-")).all()
    modules = pd.read_csv(cohort_dir / "gene_modules.csv")
    assert list(modules.columns) == ["gene_id", "symbol", "module", "kind", "effect"]
    assert modules["gene_id"].is_unique  # disjoint
    sizes = modules.groupby("module").size()
    assert set(sizes.index) == {*PROGRAM_NAMES, "tissue:Lung", "tissue:Brain - Cortex"}
    assert sizes.min() >= 20


def test_module_expression_follows_its_program_and_no_other(shared_data):
    cohort = design_cohort(small_config(shared_data, samples_per_tissue=60))
    log_tpm = pd.DataFrame(np.log1p(cohort.tpm), index=cohort.genes)
    for tissue, samples in cohort.samples.groupby("tissue"):
        for module, genes in cohort.modules.groupby("module"):
            if not module.startswith("tissue:"):
                score = log_tpm.loc[genes["gene_id"], samples.index].mean().to_numpy()
                for program in PROGRAM_NAMES:
                    r = np.corrcoef(score, samples[program])[0, 1]
                    if program == module:
                        assert r > 0.8, f"{tissue}: module {module} vs its program: r = {r:.2f}"
                    else:
                        assert abs(r) < 0.4, f"{tissue}: module {module} vs {program}: r = {r:.2f}"
    for module, genes in cohort.modules[cohort.modules["kind"] == "tissue"].groupby("module"):
        own = cohort.samples["tissue"] == module.removeprefix("tissue:")
        score = log_tpm.loc[genes["gene_id"]].mean()
        assert score[own.to_numpy()].min() > score[~own.to_numpy()].max() + 1


def test_same_seed_same_bytes_and_pixels_whatever_the_workers(cohort_dir, tmp_path, shared_data):
    again = tmp_path / "again"
    write_cohort(again, small_config(shared_data), workers=1)
    for name in TABLES:
        assert (again / name).read_bytes() == (cohort_dir / name).read_bytes(), name
    for path in sorted((cohort_dir / "slides").iterdir()):
        with openslide.OpenSlide(path) as first, openslide.OpenSlide(again / "slides" / path.name) as second:
            a = np.asarray(first.read_region((0, 0), 0, first.dimensions))
            assert np.array_equal(a, np.asarray(second.read_region((0, 0), 0, second.dimensions)))
    other = design_cohort(small_config(shared_data, seed=12))
    assert not other.samples["sample_id"].isin(pd.read_csv(cohort_dir / "programs.csv")["sample_id"]).any()


def test_a_sample_does_not_depend_on_the_rest_of_the_cohort(shared_data):
    small = design_cohort(small_config(shared_data, samples_per_tissue=2, tissues=("Lung",)))
    large = design_cohort(small_config(shared_data, samples_per_tissue=4))
    columns = ["tissue", "render_seed", *PROGRAM_NAMES]
    pd.testing.assert_frame_equal(small.samples[columns], large.samples[columns].iloc[:2])


def test_other_gtex_tissues_get_their_own_baselines_or_a_generic_one(shared_data):
    tissues = ("Liver", "Pancreas", "Stomach", "Heart - Left Ventricle")
    cohort = design_cohort(small_config(shared_data, tissues=tissues, samples_per_tissue=2))
    assert cohort.samples["smts"].tolist() == ["Liver"] * 2 + ["Pancreas"] * 2 + ["Stomach"] * 2 + ["Heart"] * 2
    assert cohort.samples["slide_id"].is_unique and cohort.samples["sample_id"].str.match(SAMPID).all()
    assert set(cohort.modules["module"]) >= {f"tissue:{t}" for t in tissues}


def test_existing_cohort_is_refused_unless_overwrite_and_failures_leave_nothing(tmp_path, shared_data, monkeypatch):
    out = tmp_path / "cohort"
    config = small_config(shared_data, samples_per_tissue=1, slide_size=256)
    write_cohort(out, config, workers=1)
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_cohort(out, config, workers=1)
    write_cohort(out, small_config(shared_data, samples_per_tissue=2, slide_size=256), workers=1, overwrite=True)
    assert len(pd.read_csv(out / "programs.csv")) == 4

    stranger = tmp_path / "notes"
    stranger.mkdir()
    (stranger / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a synthetic cohort|holds no synthetic cohort"):
        write_cohort(stranger, config, workers=1, overwrite=True)
    assert (stranger / "mine.txt").read_text() == "keep me"

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(synthetic, "render_slide_file", broken)
    with pytest.raises(OSError, match="disk full"):
        write_cohort(out, config, workers=1, overwrite=True)
    assert len(pd.read_csv(out / "programs.csv")) == 4  # the old cohort is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort", "notes"]  # no partial folders


def test_gene_list_prefix_is_stripped_and_a_missing_list_is_named(tmp_path, shared_data):
    assert cohort_gene_list(shared_data / "protein_coding_genes.csv", 2) == ["ENSG00000186092.4", "ENSG00000187634.11"]
    with pytest.raises(FileNotFoundError, match="nowhere.csv.*--gene-list"):
        cohort_gene_list(tmp_path / "nowhere.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("gene_id\nrna_ENSG1\n")
    with pytest.raises(ValueError, match="bad.csv.*'Gene'"):
        cohort_gene_list(bad)


def test_cli_writes_a_cohort_reports_its_time_and_refuses_to_overwrite(tmp_path, shared_data, capsys):
    out = tmp_path / "cli"
    argv = ["synth-cohort", "--out", str(out), "--samples-per-tissue", "1", "--genes", "200",
            "--slide-size", "256", "--workers", "1", "--tissues", "Lung", "Brain - Cortex", "Liver"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert re.search(r"wrote 3 samples × 200 genes and 3 slides to .* in [\d.]+ s", printed)
    assert (out / "cohort.json").exists() and len(list((out / "slides").iterdir())) == 3
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv[:2], str(tmp_path / "x"), "--gene-list", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: gene list not found" in capsys.readouterr().err
