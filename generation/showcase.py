"""Does RNA-GAN follow its sample? Two samples' real tiles beside tiles drawn from their expression.

The public page that shows it (`/conditioning/`) labels every tile's source, so nothing shown may ever
be dealt in a game or a study:
- the real tiles come from slides that have no tile in the catalog (checked when the set is built, and
  again by `showcase_read`, since real tiles may be imported later);
- the drawn tiles are never stored in the catalog, and their seeds lie above every job seed (`tile_seed`
  draws 56 bits), so a generation job cannot draw the same pixels.

The two samples are the pair whose VAE latents lie furthest apart among the samples that qualify, so the
page shows what the conditioning does where it should matter most; it works the same on real GTEx data.
A set is built by `python manage.py showcase --checkpoint NAME` (the demo builds its own), which runs the
generator in that process, never in the web server, and is written to a temporary folder then renamed.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from generation.models import Checkpoint, Tile
from training.utils.io import atomic_folder

FOLDER = "showcase"
MANIFEST = "manifest.json"
SEED_BASE = 1 << 60  # above tile_seed's 56 bits: never a job's seed


class ShowcaseError(RuntimeError):
    """A showcase cannot be built from this checkpoint; the message says why."""


@dataclass(frozen=True)
class ShowcaseSample:
    sample: str
    slide: str
    real: list[str]  # file names inside the set's folder
    drawn: list[str]


@dataclass(frozen=True)
class Showcase:
    name: str  # the checkpoint's name (a slug): the set's folder
    tissue: str
    checkpoint: str
    samples: list[ShowcaseSample]


def showcase_root() -> Path:
    return Path(settings.MEDIA_ROOT) / FOLDER


def _catalog_slides(tissue: str) -> set[str]:
    return set(Tile.objects.filter(source=Tile.Source.REAL, tissue=tissue)
               .values_list("expression_sample", flat=True).distinct())


def _candidates(loaded, store, *, per_sample: int, exclude: set[str]) -> list[tuple[str, str, list[str]]]:
    from training.data.samples import match_tissue, slide_id_from_sample

    samples = loaded.prepared.samples
    names = match_tissue(list(samples["tissue"].unique()), loaded.tissue)
    found = []
    for sample in sorted(samples.loc[samples["tissue"].isin(names), "sample_id"]):
        slide = slide_id_from_sample(sample)
        if slide in exclude:
            continue
        keys = store.keys(slide)
        if len(keys) >= per_sample:
            found.append((sample, slide, keys))
    return found


def _furthest_pair(latents: np.ndarray) -> tuple[int, int]:
    distances = ((latents[:, None, :] - latents[None, :, :]) ** 2).sum(-1)
    i, j = np.unravel_index(int(np.argmax(distances)), distances.shape)
    return int(min(i, j)), int(max(i, j))


def _jpeg(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _open(checkpoint: Checkpoint):
    from generation.loader import cached_generator
    from training.data.tile_store import TileStore

    if checkpoint.kind != Checkpoint.Kind.RNAGAN:
        raise ShowcaseError(f"checkpoint {checkpoint.name} is a {checkpoint.kind} run: it draws from no expression")
    loaded = cached_generator(checkpoint.run_dir, checkpoint.weights_sha256)
    tiles = json.loads((Path(checkpoint.run_dir) / "config.json").read_text()).get("tiles")
    if not tiles or not Path(tiles).exists():
        raise ShowcaseError(f"{checkpoint.run_dir}/config.json: its tile store {tiles!r} is not on this machine")
    return loaded, TileStore(tiles)


def _pair(checkpoint: Checkpoint, loaded, store, *, per_sample: int, exclude: set[str]):
    candidates = _candidates(loaded, store, per_sample=per_sample, exclude=exclude)
    if len(candidates) < 2:
        raise ShowcaseError(
            f"{checkpoint.name}: fewer than two {checkpoint.tissue} samples have {per_sample} tiles in "
            f"{store.path} and no tile in the catalog")
    expression = np.stack([loaded.expression_for_sample(sample) for sample, _, _ in candidates])
    return candidates, expression, _furthest_pair(loaded.encode(expression))


def showcase_slides(*, checkpoint: Checkpoint, per_sample: int = 6) -> list[str]:
    """The two slides a set would show if the catalog held none of the tissue's slides: a site that wants
    the page keeps them out of its real-tile import (`import_tiles --exclude-slide`; the demo does)."""
    loaded, store = _open(checkpoint)
    with store:
        candidates, _, pair = _pair(checkpoint, loaded, store, per_sample=per_sample, exclude=set())
    return [candidates[i][1] for i in pair]


def showcase_build(*, checkpoint: Checkpoint, per_sample: int = 6) -> Showcase:
    """Write the set of an RNA-GAN checkpoint (replacing an older one) and return it."""
    from training.inference.generate import generate

    loaded, store = _open(checkpoint)
    with store:
        candidates, expression, pair = _pair(checkpoint, loaded, store, per_sample=per_sample,
                                             exclude=_catalog_slides(checkpoint.tissue))
        with atomic_folder(showcase_root() / checkpoint.name, overwrite=True) as staging:
            chosen = []
            for rank, index in enumerate(pair):
                sample, slide, keys = candidates[index]
                # Evenly spread over the slide's tiles, not its first rows.
                picks = [keys[k] for k in np.linspace(0, len(keys) - 1, per_sample).round().astype(int)]
                real = []
                for k, key in enumerate(picks):
                    real.append(f"s{rank}-real-{k}.jpg")
                    (staging / real[-1]).write_bytes(store.jpeg(key))
                seeds = [SEED_BASE + rank * per_sample + k for k in range(per_sample)]
                images = generate(loaded, per_sample, expression=expression[index], seeds=seeds)
                drawn = []
                for k, image in enumerate(images):
                    drawn.append(f"s{rank}-drawn-{k}.jpg")
                    (staging / drawn[-1]).write_bytes(_jpeg(image))
                chosen.append(ShowcaseSample(sample=sample, slide=slide, real=real, drawn=drawn))
            showcase = Showcase(name=checkpoint.name, tissue=checkpoint.tissue, checkpoint=checkpoint.name,
                                samples=chosen)
            manifest = {"name": showcase.name, "tissue": showcase.tissue, "checkpoint": showcase.checkpoint,
                        "samples": [s.__dict__ for s in chosen]}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return showcase


def _read_set(folder: Path) -> Showcase | None:
    """The set in `folder`, or None when it is unreadable, half-written or shows a slide now in the catalog."""
    try:
        data = json.loads((folder / MANIFEST).read_text())
        showcase = Showcase(name=data["name"], tissue=data["tissue"], checkpoint=data["checkpoint"],
                            samples=[ShowcaseSample(**s) for s in data["samples"]])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if folder.name != showcase.name:  # a temporary folder being written, or a renamed copy
        return None
    shown = Tile.objects.filter(source=Tile.Source.REAL, tissue=showcase.tissue,
                                expression_sample__in=[s.slide for s in showcase.samples])
    return None if shown.exists() else showcase


def showcase_read() -> list[Showcase]:
    """Every set on disk whose real slides are still outside the catalog (others are never shown)."""
    root = showcase_root()
    if not root.is_dir():
        return []
    return [found for folder in sorted(root.iterdir()) if folder.is_dir() and (found := _read_set(folder))]


def showcase_file(name: str, file: str) -> Path | None:
    """The path of one image of a set that `showcase_read` would show, or None."""
    showcase = _read_set(showcase_root() / name)
    if showcase and any(file in s.real or file in s.drawn for s in showcase.samples):
        return showcase_root() / name / file
    return None
