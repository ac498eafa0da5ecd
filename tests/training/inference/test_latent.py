"""Latent-space operations and their commands: centroids, vae-sample, vae-shift, encode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.training.networks.test_vae import quiet, tiny_config, write_prepared
from training.cli.rnagan import main
from training.data.expression import load_prepared
from training.inference.latent import expression_from_table
from training.loops.train_vae import train_vae
from training.networks.vae import UnknownTissueError, load_vae, tissue_centroids

A, B = "Lung", "Brain - Cortex"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("latent")
    data = write_prepared(root / "prepared", {A: 60, B: 60}, seed=7)
    train_vae(tiny_config(data, epochs=30), root / "run", log=quiet)
    return data, root / "run", load_vae(root / "run", device="cpu"), load_prepared(data)


def tissue_means(prepared) -> dict[str, np.ndarray]:
    tissues = prepared.samples["tissue"].to_numpy()
    return {t: prepared.matrix[tissues == t].mean(axis=0) for t in (A, B)}


def distance(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x - centre[None, :], axis=1)


def test_centroids_are_mean_mu_of_training_samples(trained):
    _, run, vae, prepared = trained
    train = (prepared.samples["split"] == "train").to_numpy()
    tissues = prepared.samples["tissue"].to_numpy()
    for tissue in (A, B):
        expected = vae.encode(prepared.matrix[train & (tissues == tissue)]).mean(axis=0)
        np.testing.assert_allclose(vae.centroids[tissue], expected, rtol=1e-5, atol=1e-6)
    assert tissue_centroids(vae, prepared.matrix[:4], [A, A, B, B]).keys() == {A, B}
    with np.load(run / "centroids.npz") as saved:
        assert sorted(saved.files) == sorted([A, B])


def test_vae_sample_lies_nearer_its_tissue(trained, tmp_path, capsys):
    _, run, vae, prepared = trained
    out = tmp_path / "lung.parquet"
    assert main(["vae-sample", "--run", str(run), "--tissue", "lung", "--n", "40", "--out", str(out),
                 "--seed", "3", "--device", "cpu"]) == 0
    assert "wrote" in capsys.readouterr().out
    table = pd.read_parquet(out)
    assert list(table.columns[:2]) == ["sample_id", "tissue"] and list(table.columns[2:]) == vae.genes
    assert len(table) == 40 and table["sample_id"].is_unique and set(table["tissue"]) == {A}
    values = table[vae.genes].to_numpy()
    np.testing.assert_array_equal(values, vae.sample(A, 40, seed=3))

    means = tissue_means(prepared)
    assert (distance(values, means[A]) < distance(values, means[B])).mean() > 0.9
    mu = vae.encode(values)
    assert (distance(mu, vae.centroids[A]) < distance(mu, vae.centroids[B])).mean() > 0.9
    assert not np.array_equal(vae.sample(A, 5, seed=3), vae.sample(A, 5, seed=4))


def test_vae_shift_moves_samples_toward_the_target(trained, tmp_path):
    data, run, vae, prepared = trained
    out = tmp_path / "shifted.csv"
    assert main(["vae-shift", "--run", str(run), "--data", str(data), "--split", "test", "--from", A, "--to", B,
                 "--out", str(out), "--device", "cpu"]) == 0
    shifted = pd.read_csv(out)
    rows = prepared.rows(split="test", tissue=A)
    assert shifted["sample_id"].tolist() == prepared.samples["sample_id"].iloc[rows].tolist()
    assert set(shifted["source_tissue"]) == {A} and set(shifted["tissue"]) == {B}
    before, after = prepared.matrix[rows], shifted[vae.genes].to_numpy()
    means = tissue_means(prepared)
    assert distance(after, means[B]).mean() < 0.6 * distance(before, means[B]).mean()
    assert (distance(after, means[B]) < distance(after, means[A])).all()
    mu = vae.encode(after)
    assert (distance(mu, vae.centroids[B]) < distance(mu, vae.centroids[A])).all()


def test_vae_shift_from_a_table_uses_only_rows_of_the_source_tissue(trained, tmp_path):
    _, run, vae, prepared = trained
    table = pd.concat([prepared.samples[["sample_id", "tissue"]],
                       pd.DataFrame(prepared.matrix, columns=list(prepared.genes))], axis=1)
    table.to_csv(tmp_path / "in.csv", index=False)
    assert main(["vae-shift", "--run", str(run), "--table", str(tmp_path / "in.csv"), "--from", B, "--to", A,
                 "--out", str(tmp_path / "out.parquet"), "--device", "cpu"]) == 0
    shifted = pd.read_parquet(tmp_path / "out.parquet")
    assert len(shifted) == (prepared.samples["tissue"] == B).sum()


def test_encode_a_table_in_any_gene_order_and_a_prepared_folder(trained, tmp_path):
    data, run, vae, prepared = trained
    rng = np.random.default_rng(0)
    order = rng.permutation(len(vae.genes))
    table = pd.DataFrame(prepared.matrix[:8][:, order], columns=["rna_" + vae.genes[i] for i in order])
    table.insert(0, "sample_id", prepared.samples["sample_id"][:8])
    table.to_parquet(tmp_path / "expr.parquet")
    assert main(["encode", "--run", str(run), "--table", str(tmp_path / "expr.parquet"),
                 "--out", str(tmp_path / "mu.csv"), "--device", "cpu"]) == 0
    latent = pd.read_csv(tmp_path / "mu.csv")
    assert latent.columns[0] == "sample_id" and len(latent.columns) == 1 + vae.latent_dim
    np.testing.assert_allclose(latent.iloc[:, 1:].to_numpy(), vae.encode(prepared.matrix[:8]), rtol=1e-5, atol=1e-6)

    assert main(["encode", "--run", str(run), "--data", str(data), "--out", str(tmp_path / "all.parquet")]) == 0
    everything = pd.read_parquet(tmp_path / "all.parquet")
    assert len(everything) == len(prepared.samples)
    assert {"sample_id", "slide_id", "tissue", "split", "z00", "z31"} <= set(everything.columns)


def test_gene_mismatch_and_unknown_tissue_are_clear_errors(trained, tmp_path, capsys):
    _, run, vae, prepared = trained
    table = pd.DataFrame(prepared.matrix[:3, 3:], columns=vae.genes[3:])
    table["ENSG99999999999.1"] = 0.0
    table.insert(0, "sample_id", ["s1", "s2", "s3"])
    table.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["encode", "--run", str(run), "--table", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "3 of the VAE's 60 genes are missing" in err and vae.genes[0] in err and "ENSG99999999999.1" in err
    assert not (tmp_path / "x.csv").exists()

    assert main(["vae-sample", "--run", str(run), "--tissue", "Kidney", "--n", "2", "--out", str(tmp_path / "k.csv")]) == 2
    assert "unknown tissue 'Kidney'; this VAE knows: Brain - Cortex, Lung" in capsys.readouterr().err
    with pytest.raises(UnknownTissueError):
        vae.shift(prepared.matrix[:2], A, "Kidney")


def test_units_convert_with_the_training_scaler(trained, tmp_path):
    _, run, vae, _ = trained
    for units in ("zscore", "tpm"):
        assert main(["vae-sample", "--run", str(run), "--tissue", A, "--n", "4", "--units", units,
                     "--out", str(tmp_path / f"{units}.csv")]) == 0
    z = pd.read_csv(tmp_path / "zscore.csv")[vae.genes].to_numpy()
    tpm = pd.read_csv(tmp_path / "tpm.csv")[vae.genes].to_numpy()
    expected = np.expm1(np.maximum(z * vae.scaler.sd + vae.scaler.mean, 0))
    np.testing.assert_allclose(tpm, expected, rtol=1e-4)
    assert (tpm >= 0).all()


def test_a_table_needs_sample_ids(trained, tmp_path):
    _, _, vae, _ = trained
    pd.DataFrame(np.zeros((2, 60)), columns=vae.genes).to_csv(tmp_path / "noid.csv", index=False)
    with pytest.raises(ValueError, match="needs a 'sample_id' column"):
        expression_from_table(vae, Path(tmp_path / "noid.csv"))
