"""One synthetic slide: drawn by training.synthetic.histology and written as a pyramidal TIFF like a scanner's."""

from __future__ import annotations

from dataclasses import dataclass

from training.data.wsi import write_pyramidal_tiff
from training.synthetic.histology import MPP, render_slide

SLIDE_APP_MAG = 20


@dataclass(frozen=True)
class SlideJob:
    path: str
    tissue: str
    programs: dict[str, float]
    size: int
    seed: int


def render_slide_file(job: SlideJob) -> str:
    """Draw one slide and write it as a pyramidal TIFF (a top-level function: it runs in worker processes)."""
    rgb = render_slide(job.tissue, job.programs, job.size, job.seed)
    write_pyramidal_tiff(job.path, rgb, mpp=MPP, app_mag=SLIDE_APP_MAG)
    return job.path
