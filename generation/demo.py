"""The demo's content, built with the same commands that serve real GTEx data.

    synth-cohort → prepare-expression → tile-slides → (committed or freshly trained) VAE, GAN and
    RNA-GAN checkpoints → register → import real tiles → pregenerate through the Celery worker.

Every step is skipped when its output is already there, so a second `make demo` only starts serving.
The checkpoints in `demo/checkpoints/` were trained by `make demo-checkpoints` (this module with
`--train`), on the same synthetic cohort this module writes (fixed seed), and hold only what sampling
needs (config + EMA generator / VAE weights), each well under 5 MB.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TISSUES = ("Lung", "Brain - Cortex")
SLUGS = {"Lung": "lung", "Brain - Cortex": "brain"}
COHORT = dict(samples_per_tissue=10, genes=2000, slide_size=2048, seed=7)
# The demo's RNA-GAN is the conditioned arm (issue #13): its critic rewards a tile for matching its sample.
ARMS = {"gan": "none", "rnagan": "rna-proj"}
# The latent regression and the mode-seeking term: without the latter the conditioned generator drew one
# tile whatever its sample and noise (README, section 4).
ARM_OPTIONS = {"none": (), "rna-proj": ("--aux-weight", "1", "--diversity-weight", "1")}
IMAGE_SIZE = 256  # the catalog's RNAGAN_TILE_SIZE: generators draw it natively
STEPS = 800  # per GAN: about 8 minutes of 2 CPU cores at 256 px
SAMPLING_FILES = {
    "vae": ("config.json", "vae.safetensors", "genes.txt", "scaler.npz", "centroids.npz", "metrics.json"),
    "gan": ("config.json", "generator_ema.safetensors"),
}


@dataclass(frozen=True)
class DemoPaths:
    root: Path  # var/demo
    committed: Path  # demo/checkpoints in the checkout

    @property
    def cohort(self) -> Path:
        return self.root / "cohort"

    @property
    def genes(self) -> Path:
        return self.root / "genes.txt"

    @property
    def prepared(self) -> Path:
        return self.root / "prepared"

    @property
    def tiles(self) -> Path:
        return self.root / "tiles.lmdb"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run(self, name: str) -> Path:
        return self.runs / name


def gan_name(tissue: str, arm: str) -> str:
    return f"demo-{SLUGS[tissue]}-{arm}"


def rnagan(*args: str, log: Callable[[str], None]) -> None:
    command = [sys.executable, "-m", "training.cli", *args]
    log("$ rnagan " + " ".join(f"'{a}'" if " " in a else a for a in args))
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"rnagan {args[0]} failed (exit {result.returncode}):\n{result.stdout[-4000:]}")


def build_data(paths: DemoPaths, *, log: Callable[[str], None] = print) -> None:
    """Cohort, prepared expression and the tile store (each once)."""
    if not (paths.cohort / "cohort.json").exists():
        rnagan("synth-cohort", "--out", str(paths.cohort), "--tissues", *TISSUES,
               "--samples-per-tissue", str(COHORT["samples_per_tissue"]), "--genes", str(COHORT["genes"]),
               "--slide-size", str(COHORT["slide_size"]), "--seed", str(COHORT["seed"]), log=log)
    if not paths.genes.exists():
        from training.data.gct import iter_gct_names

        genes = [name for name, _ in iter_gct_names(paths.cohort / "expression.gct.gz")]
        paths.genes.write_text("\n".join(genes) + "\n")
    if not (paths.prepared / "report.json").exists():
        rnagan("prepare-expression", "--gct", str(paths.cohort / "expression.gct.gz"),
               "--attributes", str(paths.cohort / "sample_attributes.txt"), "--tissues", *TISSUES,
               "--genes", str(paths.genes), "--out", str(paths.prepared), "--seed", str(COHORT["seed"]), log=log)
    # Resumable: finished slides are skipped.
    rnagan("tile-slides", str(paths.cohort / "slides"), "--out", str(paths.tiles),
           "--attributes", str(paths.cohort / "sample_attributes.txt"), "--workers", "2", log=log)


def train_checkpoints(paths: DemoPaths, *, steps: int, log: Callable[[str], None] = print) -> None:
    """Train the demo's VAE, GANs and RNA-GANs from scratch into var/demo/runs, then copy the files
    sampling needs into demo/checkpoints (what `make demo-checkpoints` commits)."""
    shutil.rmtree(paths.runs, ignore_errors=True)
    rnagan("train-vae", "--data", str(paths.prepared), "--out", str(paths.run("vae")), "--preset", "tiny",
           "--epochs", "60", "--embedding", "pca", log=log)
    for tissue in TISSUES:
        for arm in ARMS:
            train_gan(paths, tissue, arm, steps=steps, log=log)
    export_checkpoints(paths, log=log)


def train_gan(paths: DemoPaths, tissue: str, arm: str, *, steps: int, log: Callable[[str], None] = print) -> None:
    """One demo generator, from scratch (its run folder is replaced)."""
    conditioning = ARMS[arm]
    run = paths.run(gan_name(tissue, arm))
    shutil.rmtree(run, ignore_errors=True)
    extra = ["--vae", str(paths.run("vae")), "--expression", str(paths.prepared)] if conditioning != "none" else []
    # Drawn at the catalog's 256 px natively (an upsampled tile is softer and compresses to a third of a
    # real one's size: the catalog refuses it), with the tiny preset's narrow channels and stable rates.
    # All slides, since the demo cohort is small; a faster EMA, since a CPU run takes few steps. Both arms
    # get the same number of steps (the same budget).
    rnagan("train-gan", "--tiles", str(paths.tiles), "--tissue", tissue, "--conditioning", conditioning,
           "--preset", "tiny", "--image-size", str(IMAGE_SIZE), "--split", "all", "--ema-decay", "0.98",
           "--epochs", "100000", "--max-steps", str(steps), "--no-progress", "--out", str(run),
           *ARM_OPTIONS[conditioning], *extra, log=log)


def export_checkpoints(paths: DemoPaths, *, log: Callable[[str], None] = print) -> None:
    """Copy what sampling needs from var/demo/runs into demo/checkpoints, with portable configs."""
    shutil.rmtree(paths.committed, ignore_errors=True)
    for name, files in _run_files(paths):
        target = paths.committed / name
        target.mkdir(parents=True)
        for file in files:
            shutil.copy2(paths.run(name) / file, target / file)
        if name != "vae":
            _portable_config(target / "config.json")
    log(f"demo checkpoints written to {paths.committed}")


def _run_files(paths: DemoPaths) -> list[tuple[str, tuple[str, ...]]]:
    names = [("vae", SAMPLING_FILES["vae"])]
    names += [(gan_name(t, arm), SAMPLING_FILES["gan"]) for t in TISSUES for arm in ARMS]
    return names


def _portable_config(config_path: Path) -> None:
    # Committed configs name their VAE and expression folder symbolically; install_checkpoints points
    # them at this machine's var/demo copies.
    config = json.loads(config_path.read_text())
    for key, placeholder in (("vae_run", "@demo/runs/vae"), ("expression_dir", "@demo/prepared"),
                             ("tiles", "@demo/tiles.lmdb")):
        if config.get(key):
            config[key] = placeholder
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def install_checkpoints(paths: DemoPaths, *, log: Callable[[str], None] = print) -> None:
    """Copy the committed checkpoints into var/demo/runs, resolving their placeholders."""
    if not (paths.committed / "vae" / "vae.safetensors").exists():
        raise FileNotFoundError(
            f"{paths.committed}: no demo checkpoints; build them with `make demo-checkpoints`"
        )
    for name, files in _run_files(paths):
        target = paths.run(name)
        if (target / files[-1]).exists() and (target / "config.json").exists():
            continue
        target.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copy2(paths.committed / name / file, target / file)
        config_path = target / "config.json"
        text = config_path.read_text().replace("@demo/", f"{paths.root}/")
        config_path.write_text(text)
    log(f"checkpoints ready in {paths.runs}")


def wait_for_jobs(job_pks: list[int], *, timeout: float, log: Callable[[str], None] = print) -> None:
    from generation.models import GenerationJob

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        jobs = list(GenerationJob.objects.filter(pk__in=job_pks))
        made = sum(j.produced for j in jobs)
        wanted = sum(j.requested for j in jobs)
        failed = [j for j in jobs if j.status == GenerationJob.Status.FAILED]
        if failed:
            raise RuntimeError(f"generation job {failed[0].pk} failed: {failed[0].error}")
        if made != last:
            log(f"  pregenerating through the Celery worker: {made}/{wanted} tiles")
            last = made
        if all(j.status == GenerationJob.Status.DONE for j in jobs):
            return
        time.sleep(0.5)
    raise RuntimeError(f"pregeneration did not finish in {timeout:.0f} s; see var/logs/worker.log")


def populate_catalog(paths: DemoPaths, *, real_per_tissue: int, synthetic_per_arm: int,
                     log: Callable[[str], None] = print) -> list[int]:
    """Register checkpoints, import real tiles and queue the missing synthetic ones; return the job ids."""
    from django.db import transaction

    from generation.imports import real_tiles_import_lmdb
    from generation.models import GenerationJob, Tile
    from generation.services import checkpoint_register
    from generation.showcase import showcase_slides
    from generation.tasks import generation_job_submit

    jobs = []
    for tissue in TISSUES:
        checkpoints = {arm: checkpoint_register(run_dir=str(paths.run(gan_name(tissue, arm))), name=gan_name(tissue, arm))
                       for arm in ARMS}
        have = Tile.objects.filter(source=Tile.Source.REAL, tissue=tissue).count()
        if have < real_per_tissue:
            # The two samples the /conditioning/ page shows stay out of the game: it labels their tiles.
            held = showcase_slides(checkpoint=checkpoints["rnagan"])
            added = real_tiles_import_lmdb(path=paths.tiles, tissue=tissue, limit=real_per_tissue, exclude_slides=held)
            log(f"imported {added} real {tissue} tiles (slides {', '.join(held)} kept for /conditioning/)")
        for checkpoint in checkpoints.values():
            have = Tile.objects.filter(checkpoint=checkpoint).count()
            pending = GenerationJob.objects.filter(checkpoint=checkpoint).exclude(status=GenerationJob.Status.DONE)
            if pending.exists():
                jobs += list(pending.values_list("pk", flat=True))
            elif have < synthetic_per_arm:
                with transaction.atomic():
                    job = generation_job_submit(checkpoint=checkpoint, requested=synthetic_per_arm - have)
                jobs.append(job.pk)
    return jobs


def build_showcases(*, log: Callable[[str], None] = print) -> None:
    """The /conditioning/ page's sets (a sample's real tiles beside RNA-GAN's), once per checkpoint."""
    from generation.models import Checkpoint
    from generation.showcase import showcase_build, showcase_read

    have = {s.name for s in showcase_read()}
    for tissue in TISSUES:
        name = gan_name(tissue, "rnagan")
        if name not in have:
            built = showcase_build(checkpoint=Checkpoint.objects.get(name=name))
            log(f"conditioning showcase of {name}: samples {', '.join(s.sample for s in built.samples)}")


def main(argv: list[str] | None = None) -> int:
    """`python -m generation.demo --train`: rebuild the committed demo checkpoints."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--train", action="store_true", required=True)
    parser.add_argument("--steps", type=int, default=STEPS, help=f"training steps of every GAN (default {STEPS})")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    paths = DemoPaths(root=root / "var" / "demo", committed=root / "demo" / "checkpoints")
    build_data(paths)
    train_checkpoints(paths, steps=args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
