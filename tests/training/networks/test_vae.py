"""The β-VAE: network shape, loss, training run folder, save/load and clear errors."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from training.cli.presets import VAE_PRESETS, build_config
from training.cli.rnagan import main
from training.data.expression import load_prepared
from training.data.scaler import fit_scaler, save_scaler
from training.loops.losses import gaussian_kl, vae_loss
from training.loops.train_vae import EarlyStopping, TrainVAEConfig, train_vae
from training.networks.vae import (
    BetaVAE,
    GeneMismatchError,
    LoadedVAE,
    VAEConfig,
    VAEError,
    gene_order,
    load_vae,
)
from training.utils.runs import load_weights, save_weights
from training.utils.schedules import warmup_cosine_factor

TINY = VAEConfig(n_genes=60, hidden=(48, 24), latent_dim=8)


def write_prepared(path: Path, tissues: dict[str, int], *, n_genes: int = 60, seed: int = 0) -> Path:
    """A prepared-expression folder in the contracts.md format: each tissue has its own mean profile,
    a few within-tissue programs and noise; z-scored with the training split's statistics."""
    rng = np.random.default_rng(seed)
    genes = [f"ENSG{i:011d}.{1 + i % 3}" for i in range(n_genes)]
    rows, frames = [], []
    for t, (tissue, count) in enumerate(tissues.items()):
        mean = rng.normal(3.0, 1.0, n_genes) + 2.0 * (rng.random(n_genes) < 0.3)
        loadings = rng.normal(0, 0.6, (3, n_genes))
        rows.append(mean + rng.normal(size=(count, 3)) @ loadings + rng.normal(0, 0.3, (count, n_genes)))
        n_train, n_val = int(0.6 * count), int(0.2 * count)
        frames.append(pd.DataFrame({
            "sample_id": [f"GTEX-T{t}{k:03d}-0{t}26-SM-{k:04d}" for k in range(count)],
            "slide_id": [f"GTEX-T{t}{k:03d}-0{t}26" for k in range(count)],
            "tissue": tissue,
            "split": ["train"] * n_train + ["val"] * n_val + ["test"] * (count - n_train - n_val),
        }))
    log_values = np.concatenate(rows).clip(0)
    samples = pd.concat(frames, ignore_index=True)
    scaler = fit_scaler(log_values[(samples["split"] == "train").to_numpy()].T, genes=genes)
    path.mkdir(parents=True)
    np.save(path / "matrix.npy", ((log_values - scaler.mean) / scaler.sd).astype(np.float32))
    samples.to_csv(path / "splits.csv", index=False)
    (path / "genes.txt").write_text("".join(f"{g}\n" for g in genes))
    save_scaler(path / "scaler.npz", scaler)
    return path


def tiny_config(data: Path, **changes) -> TrainVAEConfig:
    config = build_config(TrainVAEConfig(data=data), VAE_PRESETS, "tiny", {"embedding": "none", "device": "cpu"})
    return replace(config, **changes)


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def two_tissues(tmp_path_factory) -> Path:
    return write_prepared(tmp_path_factory.mktemp("prepared") / "two", {"Lung": 60, "Brain - Cortex": 60})


def test_shapes_and_linear_output():
    model = BetaVAE(TINY)
    out = model(torch.randn(5, 60))
    assert out.recon.shape == (5, 60) and out.mu.shape == (5, 8) and out.logvar.shape == (5, 8)
    assert isinstance(model.output, torch.nn.Linear)  # no tanh: z-scores exceed ±1
    with torch.no_grad():
        model.output.bias.fill_(3.0)
    assert model.eval()(torch.randn(4, 60), sample=False).recon.min() > 1.0


def test_encode_and_decode_take_reversed_and_strided_views():
    torch.manual_seed(0)
    vae = LoadedVAE(BetaVAE(TINY), [f"G{i}" for i in range(60)])
    x = np.random.default_rng(0).standard_normal((6, 60), dtype=np.float32)  # float32: no conversion copy
    reversed_genes = x[:, ::-1]  # negative strides, which torch.from_numpy refuses
    assert np.array_equal(vae.encode(reversed_genes), vae.encode(reversed_genes.copy()))
    z = vae.encode(x)
    assert np.array_equal(vae.decode(z[::-2]), vae.decode(z[::-2].copy()))
    assert np.array_equal(vae.encode(x[3, ::-1]), vae.encode(reversed_genes[3:4].copy()))


def test_loss_reductions_are_as_documented():
    mu, logvar = torch.ones(4, 8), torch.zeros(4, 8)
    assert torch.allclose(gaussian_kl(mu, logvar), torch.full((4,), 4.0))  # 0.5·Σ μ² over 8 dims
    terms = vae_loss(torch.full((4, 60), 2.0), torch.zeros(4, 60), mu, logvar, beta=0.5)
    assert terms.recon.item() == pytest.approx(4.0)  # mean over samples × genes
    assert terms.kl.item() == pytest.approx(4.0)  # summed over latent, averaged over the batch
    assert terms.total.item() == pytest.approx(4.0 + 0.5 * 4.0)


def test_one_training_step_gives_finite_losses():
    model = BetaVAE(TINY)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(16, 60) * 2
    out = model(x)
    terms = vae_loss(out.recon, x, out.mu, out.logvar, beta=0.005)
    terms.total.backward()
    optimizer.step()
    assert all(torch.isfinite(t) for t in (terms.total, terms.recon, terms.kl))
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_warmup_then_cosine_per_step():
    factors = [warmup_cosine_factor(s, total_steps=10, warmup_steps=4) for s in range(12)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert factors[5:10] == sorted(factors[5:10], reverse=True)
    assert factors[10] == factors[11] == pytest.approx(0.0)


@pytest.fixture(scope="module")
def trained(two_tissues, tmp_path_factory):
    """One tiny run shared by the tests that only read it (training is the slow part)."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    result = train_vae(tiny_config(two_tissues, epochs=30, embedding="pca"), tmp_path_factory.mktemp("vae") / "run",
                       log=quiet)
    return result, time.perf_counter() - started


def test_training_lowers_validation_loss_and_writes_the_run_folder(two_tissues, trained):
    result, seconds = trained
    run = result.run_dir
    val = [row["val_loss"] for row in result.history]
    assert min(val) < 0.6 * val[0], val
    for name in ("config.json", "environment.json", "vae.safetensors", "genes.txt", "scaler.npz", "losses.csv",
                 "loss_curves.png", "metrics.json", "centroids.npz", "pca.png", "pca.csv"):
        assert (run / name).stat().st_size > 0, name
    assert (run / "genes.txt").read_text() == (two_tissues / "genes.txt").read_text()
    curves = pd.read_csv(run / "losses.csv")
    assert {"train_recon", "train_kl", "val_recon", "val_kl", "lr"} <= set(curves.columns)
    assert len(curves) == len(result.history)
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]
    assert set(test["per_tissue"]) == {"Lung", "Brain - Cortex"}
    assert 0 < test["rmse"] < 1.0 and 0 < test["mae_percent"] < 100
    assert metrics["best_epoch"] == int(np.argmin(val)) + 1
    assert seconds < 60


def test_output_exceeds_unit_range_after_training(two_tissues, trained):
    prepared = load_prepared(two_tissues)
    recon = trained[0].vae.reconstruct(prepared.matrix)
    assert np.abs(prepared.matrix).max() > 2
    assert np.abs(recon).max() > 1.5


def test_early_stopping_waits_for_patience():
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    assert stopper.improved(1, 1.0) and not stopper.improved(2, 0.95)  # within min_delta: no improvement
    assert not stopper.should_stop(2) and stopper.should_stop(3) and stopper.best_epoch == 1


def test_early_stopping_ends_the_run_and_keeps_the_best_epoch(two_tissues, tmp_path):
    result = train_vae(tiny_config(two_tissues, epochs=40, patience=1, min_delta=10.0), tmp_path / "run", log=quiet)
    assert len(result.history) == 2  # nothing beats the first epoch by 10
    assert result.metrics["best_epoch"] == 1 and result.metrics["stopped_early"]
    assert load_weights_metadata(result.run_dir / "vae.safetensors")["epoch"] == "1"


def test_best_weights_are_saved_and_reload_identically(two_tissues, trained):
    result = trained[0]
    loaded = load_vae(result.run_dir, device="cpu")
    x = load_prepared(two_tissues).matrix[:10]
    assert np.array_equal(loaded.encode(x), result.vae.encode(x))
    z = np.random.default_rng(1).standard_normal((4, loaded.latent_dim)).astype(np.float32)
    assert np.array_equal(loaded.decode(z), result.vae.decode(z))
    assert np.array_equal(loaded.sample("Lung", 3, seed=2), result.vae.sample("Lung", 3, seed=2))
    assert loaded.tissues == ["Brain - Cortex", "Lung"] and loaded.genes == result.vae.genes
    assert loaded.scaler is not None and loaded.scaler.genes == tuple(loaded.genes)
    saved_epoch = load_weights_metadata(result.run_dir / "vae.safetensors")["epoch"]
    assert int(saved_epoch) == result.metrics["best_epoch"]


def load_weights_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()


def test_config_and_weights_mismatch_is_reported(trained, tmp_path):
    run = Path(shutil.copytree(trained[0].run_dir, tmp_path / "run"))
    config = json.loads((run / "config.json").read_text())
    config["model"]["latent_dim"] = 16
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(VAEError, match=r"weights do not match config.json.*mu_head.weight is \(32, 64\)"):
        load_vae(run, device="cpu")
    config["model"]["latent_dim"] = 32
    (run / "config.json").write_text(json.dumps(config))
    state = load_weights(run / "vae.safetensors")
    del state["output.bias"]
    save_weights(run / "vae.safetensors", state)
    with pytest.raises(VAEError, match=r"1 missing tensor\(s\) \(output.bias\)"):
        load_vae(run, device="cpu")


def test_gene_mismatch_names_how_many_and_which():
    genes = [f"G{i}" for i in range(10)]
    assert gene_order(list(reversed(genes)), genes).tolist() == list(range(9, -1, -1))
    with pytest.raises(GeneMismatchError, match=r"2 of the VAE's 10 genes are missing \(G3, G7\); 1 gene\(s\) are "
                                                r"not among the VAE's \(X1\)"):
        gene_order([g for g in genes if g not in ("G3", "G7")] + ["X1"], genes, source="t.csv")


def test_train_vae_command_with_presets_umap_and_five_tissues(tmp_path, capsys):
    tissues = {"Lung": 30, "Brain - Cortex": 30, "Liver": 30, "Pancreas": 30, "Stomach": 30}
    data = write_prepared(tmp_path / "five", tissues, seed=3)
    code = main(["train-vae", "--data", str(data), "--out", str(tmp_path / "run"), "--preset", "tiny",
                 "--epochs", "6", "--device", "cpu", "--seed", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "epoch   6/6" in printed and "test RMSE" in printed
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["preset"] == "tiny" and config["epochs"] == 6 and config["model"]["latent_dim"] == 32
    assert config["model"]["n_genes"] == 60
    assert (run / "umap.png").stat().st_size > 10_000
    embedding = pd.read_csv(run / "umap.csv")
    assert set(embedding["source"]) == {"real", "reconstructed", "generated"}
    assert set(embedding["tissue"]) == set(tissues)
    vae = load_vae(run, device="cpu")
    assert vae.tissues == sorted(tissues)
    assert set(json.loads((run / "metrics.json").read_text())["test"]["per_tissue"]) == set(tissues)
    for k, tissue in enumerate(tissues):
        assert vae.sample(tissue, 2, seed=k).shape == (2, 60)


def test_train_vae_refuses_an_existing_run_and_missing_data(two_tissues, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    assert main(["train-vae", "--data", str(two_tissues), "--out", str(tmp_path / "taken"), "--preset", "tiny"]) == 2
    assert "run folder exists and is not empty" in capsys.readouterr().err
    assert main(["train-vae", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), "--preset", "tiny"]) == 2
    assert "prepared expression folder not found" in capsys.readouterr().err
