"""Writing a synthetic paired cohort folder (training.synthetic.design draws it, training.synthetic.slides
writes each slide): expression.gct.gz, sample_attributes.txt, programs.csv, gene_modules.csv, slides/ and
cohort.json, which is written last and marks the cohort complete.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from training import __version__
from training.data.gct_writer import write_gct
from training.synthetic.design import PROGRAM_COLUMNS, Cohort, CohortConfig, design_cohort
from training.synthetic.histology import (
    MPP,
    PROGRAM_NAMES,
    PROGRAMS,
    broad_tissue,
    tissue_profile,
)
from training.synthetic.slides import SLIDE_APP_MAG, SlideJob, render_slide_file
from training.utils.io import atomic_open, write_json

MANIFEST = "cohort.json"  # written last: its presence marks a complete cohort
FORMAT = "rnagan-synthetic-cohort"


@dataclass
class CohortSummary:
    path: Path
    samples: int
    genes: int
    tissues: tuple[str, ...]
    workers: int
    seconds: dict[str, float]


def write_tables(folder: Path, cohort: Cohort) -> None:
    samples = cohort.samples
    write_gct(folder / "expression.gct.gz", genes=cohort.genes, descriptions=cohort.symbols,
              samples=list(samples["sample_id"]), values=cohort.tpm)
    attributes = pd.DataFrame({
        "SAMPID": samples["sample_id"], "SMTS": samples["smts"], "SMTSD": samples["tissue"],
        "SMAFRZE": "RNASEQ", "SMRIN": samples["rin"], "SMTSISCH": samples["ischemic_minutes"],
        "SMPTHNTS": "synthetic sample: no pathology notes",
    })
    _write_csv(folder / "sample_attributes.txt", attributes, sep="\t")
    _write_csv(folder / "programs.csv", samples[list(PROGRAM_COLUMNS)], float_format="%.4f")
    _write_csv(folder / "gene_modules.csv", cohort.modules, float_format="%.4f")


def _write_csv(path: Path, frame: pd.DataFrame, **options) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False, lineterminator="\n", **options)


def manifest(cohort: Cohort) -> dict[str, object]:
    config = cohort.config
    counts = cohort.samples["tissue"].value_counts()
    return {
        "format": FORMAT,
        "version": 1,
        "rnagan": __version__,
        "config": dataclasses.asdict(config) | {"tissues": list(config.tissues), "gene_list": str(config.gene_list)},
        "samples": len(cohort.samples),
        "genes": len(cohort.genes),
        "tissues": {t: {"smts": broad_tissue(t), "profile": tissue_profile(t).name, "samples": int(counts[t])}
                    for t in config.tissues},
        "programs": [dataclasses.asdict(p) for p in PROGRAMS],
        "slides": {"folder": "slides", "extension": ".tiff", "size": config.slide_size, "mpp": MPP,
                   "app_mag": SLIDE_APP_MAG},
        "files": ["expression.gct.gz", "sample_attributes.txt", "programs.csv", "gene_modules.csv", "slides/"],
    }


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse a complete cohort (unless overwrite) and anything that is not a cohort or an empty folder."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if (out / MANIFEST).exists():
        if not overwrite:
            raise FileExistsError(f"{out}: a complete synthetic cohort is already there (use --overwrite to replace it)")
        return
    if any(out.iterdir()):
        raise FileExistsError(f"{out}: folder is not empty and holds no synthetic cohort ({MANIFEST}); "
                              "refusing to replace it, even with --overwrite")


def write_cohort(out: str | os.PathLike[str], config: CohortConfig, *, workers: int | None = None,
                 overwrite: bool = False, log: Callable[[str], None] | None = None) -> CohortSummary:
    """Write the whole cohort to `out`: built in a hidden sibling folder, renamed into place at the end,
    so `out` is either absent, the old cohort, or the complete new one."""
    out = Path(out)
    log = log or (lambda _message: None)
    check_target(out, overwrite)
    started = time.perf_counter()
    cohort = design_cohort(config)
    designed = time.perf_counter()
    build = out.parent / f".{out.name}.partial-{os.getpid()}"
    _sweep_dead_builds(out)
    shutil.rmtree(build, ignore_errors=True)
    workers = max(1, min(workers or os.cpu_count() or 1, len(cohort.samples)))
    jobs = [SlideJob(str(build / "slides" / f"{row.slide_id}.tiff"), row.tissue,
                     {name: float(getattr(row, name)) for name in PROGRAM_NAMES}, config.slide_size, int(row.render_seed))
            for row in cohort.samples.itertuples(index=False)]
    try:
        (build / "slides").mkdir(parents=True)
        tables_seconds = _render_slides(jobs, workers, lambda: write_tables(build, cohort), log)
        write_json(build / MANIFEST, manifest(cohort))
        _move_into_place(build, out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    finished = time.perf_counter()
    seconds = {"design": designed - started, "tables": tables_seconds, "total": finished - started}
    return CohortSummary(out, len(cohort.samples), len(cohort.genes), config.tissues, workers, seconds)


def _render_slides(jobs: list[SlideJob], workers: int, write_tables_now: Callable[[], None],
                   log: Callable[[str], None]) -> float:
    """Render every slide (in `workers` processes) while this process writes the tables; returns the
    seconds the tables took."""
    if workers == 1:
        started = time.perf_counter()
        write_tables_now()
        tables = time.perf_counter() - started
        for done, job in enumerate(jobs, start=1):
            render_slide_file(job)
            log(f"slide {done}/{len(jobs)}: {Path(job.path).name}")
        return tables
    # Spawned (not forked) workers: the caller may hold threads (torch, a test runner) that fork copies badly.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(render_slide_file, job) for job in jobs]
        started = time.perf_counter()
        write_tables_now()
        tables = time.perf_counter() - started
        for done, future in enumerate(as_completed(futures), start=1):
            log(f"slide {done}/{len(jobs)}: {Path(future.result()).name}")
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return tables


def _sweep_dead_builds(out: Path) -> None:
    """Remove the hidden build folders of runs that were killed (SIGKILL runs no cleanup); a folder whose
    process still lives belongs to a run under way and is left alone."""
    for build in out.parent.glob(f".{out.name}.partial-*"):
        pid = build.name.rsplit("-", 1)[-1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(build, ignore_errors=True)
        except PermissionError:  # another user's live process
            pass


def _move_into_place(build: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
    try:
        os.rename(build, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old)
