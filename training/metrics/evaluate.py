"""`rnagan evaluate`: every metric of the evaluation suite for a set of run folders, on one test split.

For each run (a GAN, RNA-GAN or ablation run folder) and the real tiles of its tissue:
- conditioning fidelity (training.metrics.fidelity) on `tiles_per_sample` tiles of every sample of the
  tissue, train and held-out samples apart, with the real tiles' own score as the ceiling; with no
  programs, sample retrieval in the in-domain encoder's features;
- image quality on the `split` samples: FD, KID, precision/recall/density/coverage in the in-domain
  encoder's features, with the real-vs-real floor; the same in Inception pool features ("FID") only
  when the pytorch-fid weights file is given;
- detectability (small CNN, cross-validated);
- epochs to quality: the in-domain FD of every checkpoint the run kept;
and across runs: usefulness (ResNet-18 tissue classifier, generated ↔ real) per arm that covers ≥ 2
tissues, and a UMAP of real and generated features by tissue.

Writes into `out`: metrics.json (everything, with N and settings stated), epochs.csv, umap.csv,
encoder.safetensors + encoder.json (the in-domain encoder, reused on a rerun into the same folder).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from training.loops.loss_log import LOSSES_FILE, count_alarms
from training.metrics import fidelity as fid_mod
from training.metrics.detectability import DetectConfig, detectability
from training.metrics.features import (
    ENCODER_CONFIG,
    EncoderConfig,
    load_encoder,
    load_inception,
    train_encoder,
)
from training.metrics.frechet import fd, kid, split_floor
from training.metrics.prdc import prdc
from training.metrics.sources import (
    generate_for_samples,
    load_real_tiles,
    samples_of_tissues,
    saved_checkpoints,
    with_checkpoint,
)
from training.metrics.usefulness import UsefulConfig, usefulness
from training.synthetic.histology import PROGRAM_NAMES
from training.utils.io import atomic_open, write_json

METRICS_FILE = "metrics.json"
EPOCHS_FILE = "epochs.csv"
UMAP_FILE = "umap.csv"


@dataclass(frozen=True)
class EvalConfig:
    tiles_per_sample: int = 16  # k: fidelity tiles a sample (generated and real alike)
    real_per_slide: int = 64  # real tiles a slide read for the encoder and the quality metrics
    generated: int = 1000  # generated tiles for the quality metrics (spread over the split's samples)
    split: str = "test"
    kid_subsets: int = 50
    kid_subset_size: int = 1000
    prdc_k: int = 3
    curve_tiles: int = 300  # tiles a checkpoint for the epochs-to-quality curve
    curve_points: int = 12  # checkpoints on the curve at most, evenly spaced over those the run kept
    umap_tiles: int = 300  # tiles a source in the UMAP (0: no UMAP)
    seed: int = 0
    batch_size: int = 256
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    useful: UsefulConfig = field(default_factory=UsefulConfig)

    @classmethod
    def fast(cls, **overrides) -> EvalConfig:
        """Lighter settings for pilots and the demo (`rnagan evaluate --fast`): a shorter-trained encoder and
        detector, four checkpoints on the curve, a smaller UMAP. Fidelity is scored exactly as in full."""
        settings = {"generated": 300, "curve_tiles": 100, "curve_points": 4, "umap_tiles": 150,
                    "encoder": EncoderConfig(epochs=3, min_steps=60),
                    "detect": DetectConfig(folds=3, epochs=3, min_steps=100)}
        return cls(**{**settings, **overrides})

    def __post_init__(self) -> None:
        if self.split not in ("val", "test", "held_out"):
            raise ValueError(f"split must be val, test or held_out, got {self.split!r}")
        for name in ("tiles_per_sample", "real_per_slide", "generated", "curve_tiles"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be ≥ 2, got {getattr(self, name)}")


def _split_names(split: str) -> tuple[str, ...]:
    return fid_mod.HELD_OUT if split == "held_out" else (split,)


def quality(real: np.ndarray, fake: np.ndarray, config: EvalConfig) -> dict:
    kid_mean, kid_sd = kid(real, fake, subsets=config.kid_subsets, subset_size=config.kid_subset_size,
                           seed=config.seed)
    return {"fd": fd(real, fake), "fd_floor_real_halves": split_floor(real, seed=config.seed),
            "kid": kid_mean, "kid_sd": kid_sd, **prdc(real, fake, k=config.prdc_k),
            "n_real": int(len(real)), "n_generated": int(len(fake))}


def evaluate(runs: Sequence[str | os.PathLike[str]], *, tiles: str | os.PathLike[str],
             expression: str | os.PathLike[str], out: str | os.PathLike[str], programs: str | None = None,
             inception_weights: str | None = None, config: EvalConfig = EvalConfig(), progress: bool = True,
             log: Callable[[str], None] = print) -> dict:
    from training.data.expression import load_prepared
    from training.inference.generate import load_generator

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    inception = load_inception(inception_weights) if inception_weights else None  # a wrong file fails first
    truth = pd.read_csv(programs) if programs else None
    if truth is not None and (missing := {"sample_id", *PROGRAM_NAMES} - set(truth.columns)):
        raise ValueError(f"{programs}: missing column(s) {', '.join(sorted(missing))}")
    generators = [load_generator(r, device="cpu") for r in runs]
    sizes = {g.image_size for g in generators}
    if len(sizes) != 1:
        raise ValueError(f"the runs draw tiles of different sizes ({sorted(sizes)}); evaluate them apart")
    size = sizes.pop()
    prepared = load_prepared(expression)
    samples = samples_of_tissues(prepared.samples, sorted({g.tissue for g in generators}))
    log(f"reading real tiles of {len(samples)} samples from {tiles}")
    real = load_real_tiles(tiles, samples, per_sample=config.real_per_slide, image_size=size, seed=config.seed)
    held = _split_names(config.split)

    encoder_dir = out / "encoder"
    if (encoder_dir / ENCODER_CONFIG).exists():
        encoder = load_encoder(encoder_dir)
    else:
        train = real.of_split("train")
        slides = sorted(set(train.sample_ids))
        encoder = train_encoder(train.tiles, [slides.index(s) for s in train.sample_ids],
                                EncoderConfig(**{**asdict(config.encoder), "image_size": size}),
                                progress=progress, log=log)
        encoder.save(encoder_dir)
    real_features = encoder(real.tiles, progress=progress)
    results: dict = {"runs": {}, "config": asdict(config), "inception_weights": inception_weights,
                     "tiles": str(tiles), "expression": str(expression), "programs": programs,
                     "encoder": encoder.name, "host": platform.node()}
    curves, umap_parts = [], []
    by_arm: dict[str, list[tuple[str, np.ndarray]]] = {}
    for gen in tqdm(generators, desc="runs", disable=not progress):
        label = gen.run_dir.name
        t0 = time.perf_counter()
        of_tissue = samples_of_tissues(samples, [gen.tissue])
        tissue_real = real.where(np.isin(real.sample_ids, of_tissue["sample_id"]))
        test_real = tissue_real.of_split(*held)
        tissue_real_features = real_features[np.isin(real.sample_ids, of_tissue["sample_id"])]
        test_real_features = tissue_real_features[np.isin(tissue_real.splits, held)]
        entry: dict = {"run": str(gen.run_dir), "conditioning": gen.conditioning, "kind": gen.kind,
                       "tissue": gen.tissue, "image_size": size}

        # Fidelity: k tiles of every sample of the tissue.
        ids = of_tissue["sample_id"].tolist()
        fake_k, owners = generate_for_samples(gen, ids, per_sample=config.tiles_per_sample, seed=config.seed,
                                              batch_size=config.batch_size)
        fake_k_features = encoder(fake_k)
        split_of = of_tissue.set_index("sample_id")["split"]
        fidelity: dict = {"tiles_per_sample": config.tiles_per_sample,
                          "feature_retrieval": fid_mod.feature_retrieval(fake_k_features, owners,
                                                                         tissue_real_features,
                                                                         tissue_real.sample_ids),
                          "feature_retrieval_ceiling": fid_mod.split_half_retrieval(
                              tissue_real_features, tissue_real.sample_ids, seed=config.seed)}
        if truth is not None:
            mpp = fid_mod.tile_mpp(size)
            rows = truth[truth["sample_id"].isin(ids)]
            fidelity["programs"] = fid_mod.program_fidelity(
                fid_mod.measure_tiles(fake_k, owners, mpp=mpp), rows, split_of)
            pick = _first_k(tissue_real.sample_ids, config.tiles_per_sample)
            fidelity["programs_real_ceiling"] = fid_mod.program_fidelity(
                fid_mod.measure_tiles(tissue_real.tiles[pick], [tissue_real.sample_ids[i] for i in pick], mpp=mpp),
                rows, split_of)
        entry["fidelity"] = fidelity

        # Quality on the held-out split: tiles drawn for its samples, spread evenly.
        test_ids = sorted(set(test_real.sample_ids))
        per = max(1, config.generated // max(1, len(test_ids)))
        fake, _ = generate_for_samples(gen, test_ids, per_sample=per, seed=config.seed + 7,
                                       batch_size=config.batch_size)
        fake_features = encoder(fake)
        entry["quality"] = {"in_domain": quality(test_real_features, fake_features, config)}
        if inception is not None:
            entry["quality"]["inception"] = quality(inception(test_real.tiles, progress=progress),
                                                    inception(fake, progress=progress), config)
        entry["detectability"] = detectability(test_real.tiles, fake, config.detect, progress=progress)

        # Epochs to quality: every checkpoint the run kept.
        kept = saved_checkpoints(gen.run_dir)
        if len(kept) > config.curve_points:
            kept = [kept[i] for i in np.linspace(0, len(kept) - 1, config.curve_points).round().astype(int)]
        for step, epoch, weights in kept:
            tiles_at, _ = generate_for_samples(with_checkpoint(gen, weights), test_ids,
                                               per_sample=max(1, config.curve_tiles // max(1, len(test_ids))),
                                               seed=config.seed + 11, batch_size=config.batch_size)
            curves.append({"run": label, "step": step, "epoch": epoch, "fd": fd(test_real_features, encoder(tiles_at)),
                           "n": len(tiles_at)})
        n_umap = min(config.umap_tiles, len(fake_features))
        umap_parts.append((label, gen.tissue, fake_features[:n_umap]))
        by_arm.setdefault(gen.conditioning, []).append((gen.tissue, fake))
        entry["divergence"] = count_alarms(gen.run_dir / LOSSES_FILE)
        entry["wall_s"] = round(time.perf_counter() - t0, 1)
        results["runs"][label] = entry
        log(_summary(label, entry))

    results["usefulness"] = _usefulness(by_arm, real.of_split(*held), config, log)
    if config.umap_tiles:
        _write_umap(out / UMAP_FILE, real.of_split(*held), real_features[np.isin(real.splits, held)], umap_parts,
                    config)
    pd.DataFrame(curves, columns=["run", "step", "epoch", "fd", "n"]).to_csv(out / EPOCHS_FILE, index=False)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    write_json(out / METRICS_FILE, results)
    return results


def _first_k(ids: Sequence[str], k: int) -> list[int]:
    seen: dict[str, int] = {}
    keep = []
    for i, s in enumerate(ids):
        if seen.get(s, 0) < k:
            seen[s] = seen.get(s, 0) + 1
            keep.append(i)
    return keep


def _usefulness(by_arm, real, config: EvalConfig, log) -> dict:
    out = {}
    for arm, parts in by_arm.items():
        tissues = sorted({t for t, _ in parts})
        if len(tissues) < 2:
            out[arm] = {"skipped": f"runs of one tissue only ({tissues[0]}); the classifier needs two"}
            continue
        fake = np.concatenate([tiles for _, tiles in parts])
        fake_labels = np.concatenate([np.full(len(tiles), tissues.index(t)) for t, tiles in parts])
        keep = np.isin(real.tissues, tissues)
        real_labels = np.array([tissues.index(t) for t, k in zip(real.tissues, keep, strict=True) if k])
        out[arm] = {"tissues": tissues, **usefulness(fake, fake_labels, real.tiles[keep], real_labels, config.useful)}
        log(f"usefulness {arm}: generated → real accuracy "
            f"{out[arm]['train_generated_test_real']['accuracy']:.3f}")
    return out


def _write_umap(path: Path, real, real_features: np.ndarray, parts, config: EvalConfig) -> None:
    """A 2-D UMAP of real and generated in-domain features, one row a tile (source, tissue, x, y)."""
    import umap

    rng = np.random.default_rng(config.seed)
    pick = rng.permutation(len(real_features))[: config.umap_tiles * max(1, len(set(real.tissues)))]
    rows = [("real", real.tissues[i]) for i in pick]
    blocks = [real_features[pick]]
    for label, tissue, feats in parts:
        rows += [(label, tissue)] * len(feats)
        blocks.append(feats)
    embedding = umap.UMAP(n_neighbors=15, random_state=config.seed, n_jobs=1).fit_transform(np.concatenate(blocks))
    frame = pd.DataFrame(rows, columns=["source", "tissue"])
    frame["x"], frame["y"] = embedding[:, 0], embedding[:, 1]
    with atomic_open(path, "w", newline="") as handle:
        frame.to_csv(handle, index=False)


def _summary(label: str, entry: dict) -> str:
    q = entry["quality"]["in_domain"]
    parts = [f"{label} ({entry['conditioning']}, {entry['tissue']}): in-domain FD {q['fd']:.2f} "
             f"(floor {q['fd_floor_real_halves']:.2f}), precision {q['precision']:.2f}, recall {q['recall']:.2f}, "
             f"detectability {entry['detectability']['accuracy']:.2f}"]
    if "inception" in entry["quality"]:
        parts.append(f"FID {entry['quality']['inception']['fd']:.1f} (N = {entry['quality']['inception']['n_generated']})")
    prog = entry["fidelity"].get("programs")
    if prog:
        rs = ", ".join(f"{prog['correlation']['held_out'][p]['pearson']:.2f}" for p in PROGRAM_NAMES)
        parts.append(f"held-out r {rs}; top-1 {prog['retrieval']['all']['top1']:.0%} "
                     f"(chance {prog['retrieval']['all']['chance_top1']:.1%})")
    return "; ".join(parts) + f"; {entry['wall_s']} s"

