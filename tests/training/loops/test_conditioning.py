"""What reaches the generator for each arm: no batch-wise normalisation, the latent survives batching."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from training.loops.conditioning import LatentTable, describe_rows, load_rna_conditioning, training_input
from training.networks.gan import GANConfig, Generator, init_weights
from training.networks.inputs import NOISE_HALF_WIDTH, sampling_input, seeded_noise
from training.utils.ema import recalibrate_batchnorm


def _table(rows=3, dim=6, seed=0):
    return LatentTable(torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed)) * 2)


def _input(mode, rows, table, seed=0, dim=6):
    rows = torch.as_tensor(rows)
    return training_input(
        mode,
        len(rows),
        dim,
        generator=torch.Generator().manual_seed(seed),
        device="cpu",
        rows=rows,
        table=table,
    )


def test_rna_input_is_the_samples_latent_plus_narrow_uniform_noise():
    table = _table()
    z = _input("rna", [0, 1, 0, 2], table)
    offsets = z - table.latents[[0, 1, 0, 2]]
    assert offsets.abs().max() <= NOISE_HALF_WIDTH
    assert offsets.abs().max() > 0.2  # the noise spans its range, it is not switched off


def test_a_batch_mixing_two_samples_feeds_two_different_inputs():
    table = _table()
    z = _input("rna", [0, 1, 0, 1], table)
    # Each row stays within the noise of its own sample's latent, far from the other sample's.
    assert torch.all((z[[0, 2]] - table.latents[0]).abs() <= NOISE_HALF_WIDTH)
    assert torch.all((z[[1, 3]] - table.latents[1]).abs() <= NOISE_HALF_WIDTH)
    assert (z[0] - z[1]).abs().max() > 1.0


def test_nothing_normalises_across_the_batch():
    table = _table()
    mixed = _input("rna", [0, 1, 2], table, seed=5)
    alone_sample = _input("rna", [0, 0, 0], table, seed=5)
    # Same noise draws: row 0 is the same whatever the rest of the batch holds, and a one-sample
    # batch keeps its latent (the original standardisation subtracted it to zero).
    torch.testing.assert_close(mixed[0], alone_sample[0])
    assert (alone_sample.mean(0) - table.latents[0]).abs().max() <= NOISE_HALF_WIDTH


def test_a_batch_of_one_sample_works():
    table = _table()
    for rows in ([1], [1, 1, 1, 1]):
        z = _input("rna", rows, table)
        assert torch.isfinite(z).all()
        assert torch.all((z - table.latents[1]).abs() <= NOISE_HALF_WIDTH)


def test_gan_input_is_standard_normal_and_noise_arm_is_the_narrow_noise_alone():
    gen = torch.Generator().manual_seed(0)
    z = training_input("none", 4000, 8, generator=gen, device="cpu")
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.05
    noise = training_input("noise", 4000, 8, generator=gen, device="cpu")
    assert noise.abs().max() <= NOISE_HALF_WIDTH and noise.abs().max() > 0.29
    assert abs(noise.mean().item()) < 0.01


def test_rna_input_refuses_tiles_without_an_expression_row():
    with pytest.raises(IndexError, match="expression row -1"):
        _input("rna", [0, -1], _table())
    with pytest.raises(ValueError, match="latent table"):
        training_input("rna", 2, 6, generator=torch.Generator(), device="cpu", rows=torch.tensor([0, 1]))


def test_sampling_noise_of_a_tile_depends_only_on_its_seed():
    for mode in ("none", "rna", "noise"):
        batch = seeded_noise(mode, [7, 8, 9], 5)
        torch.testing.assert_close(batch[1], seeded_noise(mode, [8], 5)[0], rtol=0, atol=0)
        assert not torch.equal(batch[0], batch[1])


def test_drawing_noise_on_several_threads_changes_nothing():
    seeds = list(range(100, 400))
    for mode in ("none", "rna"):
        parallel, serial = seeded_noise(mode, seeds, 5, threads=4), seeded_noise(mode, seeds, 5)
        torch.testing.assert_close(parallel, serial, rtol=0, atol=0)


def test_same_noise_different_expression_gives_a_different_tile():
    config = GANConfig(input_dim=6, image_size=64, g_width=4, g_max_width=32)
    torch.manual_seed(0)
    generator = Generator(config)
    init_weights(generator)
    table = _table()
    # BatchNorm statistics as after training (measured on the training inputs), then eval mode.
    generator = recalibrate_batchnorm(
        generator, [_input("rna", [0, 1, 2] * 4, table, seed=s) for s in range(3)]
    )
    a = sampling_input("rna", [3], 6, table.latents[0:1])
    b = sampling_input("rna", [3], 6, table.latents[1:2])
    torch.testing.assert_close(a - table.latents[0], b - table.latents[1])  # the same noise
    with torch.no_grad():
        assert (generator(a) - generator(b)).abs().max() > 1e-3


def test_sampling_input_checks_its_conditioning():
    with pytest.raises(ValueError, match="needs an expression"):
        sampling_input("rna", [0], 6)
    with pytest.raises(ValueError, match="takes no expression"):
        sampling_input("none", [0], 6, torch.zeros(1, 6))


def test_latent_table_encodes_every_row_once_in_chunks(tmp_path):
    weights = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    calls = []

    def encode(x):
        calls.append(len(x))
        return x @ weights

    matrix = np.random.default_rng(1).standard_normal((7, 10)).astype(np.float32)
    table = LatentTable.from_encoder(encode, matrix, chunk=3)
    assert calls == [3, 3, 1]
    np.testing.assert_allclose(table.latents.numpy(), matrix @ weights, rtol=1e-5, atol=1e-5)
    table.save(tmp_path / "latents.safetensors")
    assert torch.equal(LatentTable.load(tmp_path / "latents.safetensors").latents, table.latents)


def test_rows_for_training_and_the_grid_come_from_the_tissue_and_split():
    samples = pd.DataFrame(
        {
            "sample_id": ["L1", "L2", "B1", "L3", "L4"],
            "slide_id": ["l1", "l2", "b1", "l3", "l4"],
            "tissue": ["Lung", "Lung", "Brain - Cortex", "Lung", "Lung"],
            "split": ["train", "train", "train", "val", "test"],
        }
    )
    data = describe_rows(samples, _table(5), tissue="lung", split="train", n_grid=4, source="prepared")
    assert data.train_rows == [0, 1]
    assert data.grid_rows == [3, 4] and data.grid_labels == ["L3", "L4"]  # held-out samples
    assert describe_rows(
        samples, _table(5), tissue="brain", split="train", n_grid=2, source="p"
    ).train_rows == [2]
    with pytest.raises(ValueError, match="no samples of tissue 'liver'"):
        describe_rows(samples, _table(5), tissue="liver", split="train", n_grid=2, source="p")


def _vae_run(folder, genes, latent_dim=4):
    """A VAE run folder written through the VAE's own classes (untrained weights serve here)."""
    from training.networks.vae import BetaVAE, VAEConfig
    from training.utils.runs import save_weights

    folder.mkdir()
    config = VAEConfig(n_genes=len(genes), hidden=(8,), latent_dim=latent_dim)
    torch.manual_seed(0)
    save_weights(folder / "vae.safetensors", BetaVAE(config).state_dict())
    (folder / "config.json").write_text(
        json.dumps({"model": {"n_genes": len(genes), "hidden": [8], "latent_dim": latent_dim}})
    )
    (folder / "genes.txt").write_text("\n".join(genes) + "\n")
    return folder


def _prepared(folder, genes, n=4):
    from training.data.scaler import Scaler, save_scaler

    folder.mkdir()
    np.save(
        folder / "matrix.npy", np.random.default_rng(0).standard_normal((n, len(genes))).astype(np.float32)
    )
    pd.DataFrame(
        {
            "sample_id": [f"S{i}" for i in range(n)],
            "slide_id": [f"s{i}" for i in range(n)],
            "tissue": ["Lung"] * n,
            "split": ["train"] * (n - 1) + ["val"],
        }
    ).to_csv(folder / "splits.csv", index=False)
    (folder / "genes.txt").write_text("\n".join(genes) + "\n")
    save_scaler(
        folder / "scaler.npz",
        Scaler(tuple(genes), np.zeros(len(genes)), np.ones(len(genes)), np.ones(len(genes), bool)),
    )
    return folder


def test_rna_conditioning_encodes_the_prepared_matrix_with_the_vae(tmp_path):
    genes = [f"ENSG{i:011d}.1" for i in range(12)]
    vae = _vae_run(tmp_path / "vae", genes)
    prepared = _prepared(tmp_path / "prepared", list(reversed(genes)))  # same genes, other order
    data, loaded = load_rna_conditioning(vae, prepared, tissue="Lung", split="train", device="cpu")
    assert tuple(data.table.latents.shape) == (4, 4)
    assert data.train_rows == [0, 1, 2] and data.grid_labels == ["S3"]
    from training.networks.vae import load_vae

    expected = load_vae(vae, device="cpu").encode(np.ascontiguousarray(loaded.matrix[:, ::-1]))
    np.testing.assert_allclose(data.table.latents.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_expression_with_other_genes_than_the_vae_is_refused_with_the_counts(tmp_path):
    genes = [f"ENSG{i:011d}.1" for i in range(12)]
    vae = _vae_run(tmp_path / "vae", genes)
    prepared = _prepared(tmp_path / "prepared", genes[:10] + ["ENSG99999999999.1"])
    with pytest.raises(ValueError, match=r"2 of the VAE's 12 genes are missing.*1 gene\(s\) are not among"):
        load_rna_conditioning(vae, prepared, tissue="Lung", device="cpu")
