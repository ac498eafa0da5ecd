"""The design of a synthetic paired cohort in GTEx's file formats: expression, sample attributes and one slide a sample,
tied together by known morphology programs, so every later stage can be tested end to end.

Each sample draws the programs of training.synthetic.histology.PROGRAMS around its tissue's baseline. A program
moves a disjoint module of genes (log TPM rises linearly with the standardised program) and also
changes the drawn tissue; tissue identity moves a module of its own. Ground truth is written beside the
data: `programs.csv` (per sample) and `gene_modules.csv` (which genes answer to what).

Randomness is keyed, not sequential: a sample's programs, expression noise and slide seed come from
(seed, tissue name, sample index), so they do not depend on which other samples or tissues are in the
cohort; IDs and gene modules come from streams of their own.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.genes import read_gene_list
from training.synthetic.histology import (
    PROGRAM_NAMES,
    PROGRAMS,
    broad_tissue,
    tissue_profile,
)
from training.synthetic.paths import DEFAULT_GENE_LIST, DEFAULT_TISSUES

# The middle part of a GTEx tissue sample ID (GTEX-1117F-0226) for the tissues we know; others get
# a code derived from their name.
TISSUE_CODES = {"Lung": "0726", "Brain - Cortex": "3126", "Liver": "1526", "Pancreas": "0926", "Stomach": "1826"}
ID_ALPHABET = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))

# Stream numbers keep the independent random draws apart (see the module docstring).
STREAM_GENES, STREAM_IDS, STREAM_TISSUE, STREAM_SAMPLE = 1, 2, 3, 4

# Expression model, natural-log TPM: expressed genes, silent genes (zero or nearly), and a few very
# high ones give GTEx's heavy tail; module genes are always expressed so their response is visible.
SILENT_SHARE, SILENT_LOG = 0.3, (-4.0, 1.0)
HIGH_SHARE, HIGH_LOG = 0.01, (7.0, 1.0)
EXPRESSED_LOG, MODULE_LOG = (1.0, 1.8), (3.0, 0.8)
TISSUE_SHIFT_SD = 0.3  # every gene differs a little between tissues
TISSUE_MODULE_EFFECT = 2.5  # log TPM added to a tissue's own module
PROGRAM_EFFECT = (0.7, 1.2)  # log TPM per program scale, drawn per gene
NOISE_SD = 0.35
TPM_FLOOR = 0.05  # subtracted, then clipped at zero: silent genes read as exact zeros

PROGRAM_COLUMNS = ("sample_id", "slide_id", "tissue", *PROGRAM_NAMES)


@dataclass(frozen=True)
class CohortConfig:
    samples_per_tissue: int = 20
    tissues: tuple[str, ...] = DEFAULT_TISSUES
    genes: int | None = None  # keep only the first N genes of the list (fast tests)
    gene_list: Path = DEFAULT_GENE_LIST
    slide_size: int = 2048
    seed: int = 0
    module_size: int = 100  # genes a module; shrunk to fit when --genes is small

    def validate(self) -> None:
        if self.samples_per_tissue < 1:
            raise ValueError(f"samples_per_tissue must be at least 1, got {self.samples_per_tissue}")
        if not self.tissues:
            raise ValueError("at least one tissue is needed")
        if len(set(self.tissues)) != len(self.tissues):
            raise ValueError(f"tissues are repeated: {', '.join(self.tissues)}")
        for tissue in self.tissues:
            if not tissue.strip() or "\t" in tissue or "\n" in tissue:
                raise ValueError(f"tissue name {tissue!r} is empty or holds a tab/newline")
        if self.genes is not None and self.genes < 1:
            raise ValueError(f"genes must be at least 1, got {self.genes}")
        if not 256 <= self.slide_size <= 32768:
            raise ValueError(f"slide_size must be between 256 and 32768 pixels, got {self.slide_size}")
        if self.module_size < 1:
            raise ValueError(f"module_size must be at least 1, got {self.module_size}")


@dataclass
class Cohort:
    """Everything but the slides: tables in memory, as written to disk."""

    config: CohortConfig
    genes: list[str]
    symbols: list[str]
    samples: pd.DataFrame  # sample_id, slide_id, donor_id, tissue, smts, render_seed, <programs>, rin, ischemic_minutes
    modules: pd.DataFrame  # gene_id, symbol, module, kind, effect
    tpm: np.ndarray  # genes × samples


def stable_key(text: str) -> int:
    """A 32-bit number for a name that is the same in every process and Python version (unlike hash())."""
    return zlib.crc32(text.encode("utf-8"))


def cohort_gene_list(path: str | os.PathLike[str] = DEFAULT_GENE_LIST, limit: int | None = None) -> list[str]:
    """The first `limit` gene IDs of a protein-coding list (header `Gene`, rows `rna_ENSG...`), each once."""
    try:
        genes = read_gene_list(path, require_header=True)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: gene list not found (it is expected in ../shared/data beside the repository; "
            "pass --gene-list to use another file)") from None
    seen: dict[str, int] = {}
    for number, gene in enumerate(genes, start=1):
        if gene in seen:
            raise ValueError(f"{path}: gene {gene} (entry {number}) repeats entry {seen[gene]}")
        seen[gene] = number
    if limit is not None and len(genes) < limit:
        raise ValueError(f"{path}: {limit} genes asked for, but the list has only {len(genes)}")
    return genes if limit is None else genes[:limit]


def gene_symbols(count: int) -> list[str]:
    """Synthetic symbols by position in the gene list (SYN00001, ...): stable for a gene whatever --genes is."""
    return [f"SYN{i + 1:05d}" for i in range(count)]


def tissue_code(tissue: str, taken: set[str]) -> str:
    code = TISSUE_CODES.get(tissue) or f"{stable_key(tissue) % 10000:04d}"
    while code in taken:  # two unknown tissues whose names collide: move to the next free code
        code = f"{(int(code) + 1) % 10000:04d}"
    return code


def _unique_codes(rng: np.random.Generator, count: int, length: int) -> list[str]:
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < count:
        code = "".join(rng.choice(ID_ALPHABET, size=length))
        if code not in seen:
            seen.add(code)
            codes.append(code)
    return codes


def design_samples(config: CohortConfig) -> pd.DataFrame:
    """One row a sample: GTEx-style IDs, tissue, programs (rounded as written) and the slide's seed.

    Donor k gives sample k of every tissue, as GTEx donors give several tissues.
    """
    n = config.samples_per_tissue
    rng_ids = np.random.default_rng([config.seed, STREAM_IDS])
    donors = _unique_codes(rng_ids, n, 5)
    aliquots = iter(_unique_codes(rng_ids, n * len(config.tissues), 5))
    taken: set[str] = set()
    rows = []
    for tissue in config.tissues:
        code = tissue_code(tissue, taken)
        taken.add(code)
        profile = tissue_profile(tissue)
        for index in range(n):
            rng = np.random.default_rng([config.seed, STREAM_SAMPLE, stable_key(tissue), index])
            slide_id = f"GTEX-{donors[index]}-{code}"
            row = {"sample_id": f"{slide_id}-SM-{next(aliquots)}", "slide_id": slide_id, "donor_id": f"GTEX-{donors[index]}",
                   "tissue": tissue, "smts": broad_tissue(tissue), "render_seed": int(rng.integers(2**31))}
            for program in PROGRAMS:
                value = rng.normal(profile.mean[program.name], profile.sd[program.name])
                row[program.name] = round(float(np.clip(value, program.low, program.high)), 4)
            # Sample attributes GTEx users filter on; they do not move expression here.
            row["rin"] = round(float(np.clip(rng.normal(7.2, 0.9), 4.0, 10.0)), 1)
            row["ischemic_minutes"] = int(rng.integers(60, 900))
            rows.append(row)
    return pd.DataFrame(rows)


def design_modules(config: CohortConfig, genes: list[str], symbols: list[str]) -> pd.DataFrame:
    """Disjoint gene modules: one a program, then one a tissue (in the order given)."""
    names = [(p.name, "program") for p in PROGRAMS] + [(f"tissue:{t}", "tissue") for t in config.tissues]
    size = min(config.module_size, len(genes) // (2 * len(names)))
    if size < 5:
        raise ValueError(f"{len(genes)} genes are too few for {len(names)} modules of at least 5 genes "
                         f"(need {10 * len(names)}; raise --genes)")
    rng = np.random.default_rng([config.seed, STREAM_GENES, 1])
    order = rng.permutation(len(genes))
    effects = rng.uniform(*PROGRAM_EFFECT, size=len(names) * size)
    rows = []
    for m, (module, kind) in enumerate(names):
        for j, gene_index in enumerate(sorted(order[m * size : (m + 1) * size])):
            effect = TISSUE_MODULE_EFFECT if kind == "tissue" else round(float(effects[m * size + j]), 4)
            rows.append({"gene_id": genes[gene_index], "symbol": symbols[gene_index], "module": module,
                         "kind": kind, "effect": effect})
    return pd.DataFrame(rows)


def simulate_expression(config: CohortConfig, genes: list[str], samples: pd.DataFrame,
                        modules: pd.DataFrame) -> np.ndarray:
    """TPM-like values (genes × samples, float64, ≥ 0): log-normal around gene means, moved by modules."""
    n_genes = len(genes)
    rng = np.random.default_rng([config.seed, STREAM_GENES, 2])
    kind = rng.choice(3, size=n_genes, p=[SILENT_SHARE, HIGH_SHARE, 1 - SILENT_SHARE - HIGH_SHARE])
    base = np.select([kind == 0, kind == 1], [rng.normal(*SILENT_LOG, n_genes), rng.normal(*HIGH_LOG, n_genes)],
                     rng.normal(*EXPRESSED_LOG, n_genes))
    row_of = {gene: i for i, gene in enumerate(genes)}
    module_rows = {name: np.array([row_of[g] for g in group["gene_id"]]) for name, group in modules.groupby("module", sort=False)}
    module_effect = {name: group["effect"].to_numpy() for name, group in modules.groupby("module", sort=False)}
    in_module = np.concatenate(list(module_rows.values()))
    base[in_module] = rng.normal(*MODULE_LOG, in_module.size)

    log_tpm = np.empty((n_genes, len(samples)))
    shifts: dict[str, np.ndarray] = {}
    positions = samples.groupby("tissue", sort=False).cumcount().to_numpy()
    for column, sample in enumerate(samples.itertuples(index=False)):
        tissue = sample.tissue
        if tissue not in shifts:
            shifts[tissue] = np.random.default_rng([config.seed, STREAM_TISSUE, stable_key(tissue)]).normal(
                0, TISSUE_SHIFT_SD, n_genes)
        key = [config.seed, STREAM_SAMPLE, stable_key(tissue), int(positions[column]), 1]
        noise_rng = np.random.default_rng(key)
        values = base + shifts[tissue] + noise_rng.normal(0, NOISE_SD, n_genes)
        for program in PROGRAMS:
            z = (getattr(sample, program.name) - program.centre) / program.scale
            values[module_rows[program.name]] += module_effect[program.name] * z
        values[module_rows[f"tissue:{tissue}"]] += module_effect[f"tissue:{tissue}"]
        log_tpm[:, column] = values
    return np.maximum(np.exp(log_tpm) - TPM_FLOOR, 0.0)


def design_cohort(config: CohortConfig) -> Cohort:
    """The whole cohort except its slides (which are costly): IDs, programs, modules, expression."""
    config.validate()
    genes = cohort_gene_list(config.gene_list, config.genes)
    symbols = gene_symbols(len(genes))
    samples = design_samples(config)
    modules = design_modules(config, genes, symbols)
    tpm = simulate_expression(config, genes, samples, modules)
    return Cohort(config=config, genes=genes, symbols=symbols, samples=samples, modules=modules, tpm=tpm)
