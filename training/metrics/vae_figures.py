"""Figures of a VAE run: loss curves, and one 2-D embedding of real, reconstructed and generated samples.

matplotlib draws through `Figure` objects, never pyplot, so no display backend or global state is
involved; every figure (and the embedding's CSV) is written to a temporary name and renamed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.utils.io import atomic_open, atomic_path

if TYPE_CHECKING:  # only annotated here; plotting loss curves needs no torch
    from training.networks.vae import LoadedVAE


def _save_figure(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def plot_losses(history: list[dict[str, float]], path: Path, *, best_epoch: int) -> None:
    """Reconstruction and KL, train and validation, in two panels."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

    fig = Figure(figsize=(11, 4))
    epochs = [row["epoch"] for row in history]
    for ax, term, title in zip(fig.subplots(1, 2), ("recon", "kl"), ("reconstruction (MSE)", "KL (sum over latent)"),
                               strict=True):
        ax.plot(epochs, [row[f"train_{term}"] for row in history], label="train")
        ax.plot(epochs, [row[f"val_{term}"] for row in history], label="validation (z = μ)")
        ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
        ax.set(title=title, xlabel="epoch")
        ax.legend()
    _save_figure(fig, path)


def plot_embedding(vae: LoadedVAE, matrix: np.ndarray, tissues: np.ndarray, sample_ids: np.ndarray, run: Path, *,
                   method: str, max_points: int, seed: int) -> None:
    """UMAP (or PCA) of real vs reconstructed vs generated expression, one shared embedding, by tissue.

    Real = a random `max_points` of the samples of every split; reconstructed =
    decode(μ) of the same samples; generated = as many `vae.sample` draws per tissue.
    """
    import pandas as pd
    from matplotlib.figure import Figure
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(matrix))[:max_points])
    real, labels = matrix[keep], tissues[keep]
    recon = vae.reconstruct(real)
    names = sorted(set(labels))
    generated = np.concatenate([vae.sample(t, int((labels == t).sum()), seed + i) for i, t in enumerate(names)])
    generated_labels = np.concatenate([[t] * int((labels == t).sum()) for t in names])
    pca = PCA(n_components=min(50, len(real) - 1, real.shape[1]), random_state=seed).fit(real)
    features = pca.transform(np.concatenate([real, recon, generated]))
    if method == "umap":
        coords = umap_2d(features, seed=seed)
    else:
        coords = features[:, :2]
    n = len(real)
    sources = np.array(["real"] * n + ["reconstructed"] * n + ["generated"] * n)
    all_labels = np.concatenate([labels, labels, generated_labels])
    ids = np.concatenate([sample_ids[keep], sample_ids[keep], [f"generated-{k}" for k in range(n)]])
    frame = pd.DataFrame({"source": sources, "tissue": all_labels, "sample_id": ids,
                          "x": coords[:, 0], "y": coords[:, 1]})
    with atomic_open(run / f"{method}.csv", "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False)

    fig = Figure(figsize=(15, 5))
    axes = fig.subplots(1, 3, sharex=True, sharey=True)
    colours = {t: f"C{i % 10}" for i, t in enumerate(names)}
    for ax, source in zip(axes, ("real", "reconstructed", "generated"), strict=True):
        part = frame[frame["source"] == source]
        for t in names:
            pts = part[part["tissue"] == t]
            ax.scatter(pts["x"], pts["y"], s=6, alpha=0.7, color=colours[t], label=t)
        ax.set(title=f"{source} ({len(part)})", xlabel=f"{method.upper()} 1", ylabel=f"{method.upper()} 2")
    axes[0].legend(markerscale=3, fontsize="small")
    _save_figure(fig, run / f"{method}.png")


def umap_2d(features: np.ndarray, *, seed: int) -> np.ndarray:
    """A 2-D UMAP, avoiding most of umap-learn's numba compilation (15–40 s in every new process).

    Neighbours come from scikit-learn (exact, instant at figure sizes) instead of umap-learn's numba
    kNN, and the numba kernels that remain are switched to numba's on-disk cache, so only the first
    run on a machine compiles them.
    """
    import warnings

    import umap
    from sklearn.neighbors import NearestNeighbors

    _cache_umap_kernels()
    k = min(15, len(features) - 1)
    distances, indices = NearestNeighbors(n_neighbors=k).fit(features).kneighbors(features)
    reducer = umap.UMAP(n_neighbors=k, random_state=seed, n_jobs=1, precomputed_knn=(indices, distances))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")  # we never call .transform
        return reducer.fit_transform(features)


UMAP_KERNELS = {
    "umap.umap_": ("smooth_knn_dist", "compute_membership_strengths"),
    "umap.layouts": ("clip", "rdist", "_nb_optimize_layout_euclidean_single_epoch",
                     "_nb_optimize_layout_euclidean_single_epoch_parallel"),
}


def _cache_umap_kernels() -> None:
    import importlib

    from numba.core.dispatcher import Dispatcher

    for module_name, names in UMAP_KERNELS.items():
        module = importlib.import_module(module_name)
        for name in names:
            kernel = getattr(module, name, None)  # names of a future umap-learn may differ: then no cache
            if isinstance(kernel, Dispatcher):
                try:
                    kernel.enable_caching()
                except RuntimeError:  # no writable cache location: compile in memory as usual
                    pass

