"""Speed and memory of `rnagan prepare-expression` on a generated GTEx-shaped GCT.

The real GTEx v8 TPM file is 56,200 genes × 17,382 samples (~3 GB of text). By default this writes a
file with the real row width (17,382 samples) but fewer rows, keeps the paper's 19,198 protein-coding
genes in the same proportion (~1/3 of rows) and ~1,700 samples of five tissues, times the command in a
child process (peak RSS from the kernel), and extrapolates the time to 56,200 rows.

    .venv/bin/python bench/expression.py                      # 5,000 rows × 17,382 samples
    .venv/bin/python bench/expression.py --genes 56200        # the full height (writes ~5 GB)
"""

from __future__ import annotations

import argparse
import gzip
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GENE_LIST = ROOT.parent / "shared" / "data" / "protein_coding_genes.csv"
REAL_GENES, REAL_SAMPLES, PAPER_GENES = 56_200, 17_382, 19_198
TISSUES = {"Brain - Cortex": 255, "Lung": 578, "Pancreas": 328, "Stomach": 359, "Liver": 226}


def write_cohort(folder: Path, n_genes: int, n_samples: int, seed: int) -> tuple[Path, Path, Path, int]:
    rng = np.random.default_rng(seed)
    # TPM-like text: ~30 % zeros, the rest spread over four orders of magnitude, as GTEx prints them.
    vocab = ["0"] * 1200 + [f"{v:.4g}" for v in rng.lognormal(0.5, 2.0, size=2896)]
    samples = [f"GTEX-{i:05X}-{i % 97:04d}-SM-{i:05d}" for i in range(n_samples)]
    wanted = sum(TISSUES.values())
    tissue_of = {}
    chosen = rng.choice(n_samples, size=min(wanted, n_samples), replace=False)
    start = 0
    for tissue, count in TISSUES.items():
        for i in chosen[start : start + count]:
            tissue_of[samples[i]] = tissue
        start += count
    kept = round(n_genes * PAPER_GENES / REAL_GENES)
    listed = [line.strip().removeprefix("rna_") for line in GENE_LIST.read_text().splitlines()[1:]][:kept]
    names = listed + [f"ENSG9{i:010d}.1" for i in range(n_genes - len(listed))]
    names = [names[i] for i in rng.permutation(len(names))]

    gct = folder / "expr.gct.gz"
    with gzip.open(gct, "wt", compresslevel=1) as handle:
        handle.write(f"#1.2\n{n_genes}\t{n_samples}\nName\tDescription\t" + "\t".join(samples) + "\n")
        for name in names:
            row = rng.integers(0, len(vocab), size=n_samples)
            handle.write(f"{name}\tSYM\t" + "\t".join([vocab[i] for i in row]) + "\n")
    attributes = folder / "attributes.txt"
    attributes.write_text("SAMPID\tSMTS\tSMTSD\n" + "".join(f"{s}\tX\t{t}\n" for s, t in tissue_of.items()))
    genes = folder / "genes.txt"
    genes.write_text("\n".join(listed) + "\n")
    return gct, attributes, genes, kept


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--genes", type=int, default=5_000)
    parser.add_argument("--samples", type=int, default=REAL_SAMPLES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="keep the generated files in this folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="rnagan-bench-expr-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        gct, attributes, genes, kept = write_cohort(folder, args.genes, args.samples, args.seed)
        with gzip.open(gct, "rb") as handle:
            text_bytes = sum(len(block) for block in iter(lambda: handle.read(1 << 24), b""))
        print(
            f"generated {args.genes:,} genes × {args.samples:,} samples: {gct.stat().st_size / 1e6:.0f} MB gz, "
            f"{text_bytes / 1e6:.0f} MB text, in {time.perf_counter() - started:.0f} s"
        )

        # The library call in a child process: its peak RSS is the kernel's, free of this script's memory.
        # (`rnagan prepare-expression` adds only the CLI's start-up, which imports every command module.)
        code = (
            "import sys; from pathlib import Path; "
            "from training.data.expression import PrepareConfig, prepare_expression; "
            "import time; t, c = time.perf_counter(), time.process_time(); "
            "prepare_expression(PrepareConfig(gct=Path(sys.argv[1]), attributes=Path(sys.argv[2]), "
            "genes=Path(sys.argv[3]), out=Path(sys.argv[4]), tissues=tuple(sys.argv[5:]), overwrite=True)); "
            "print(time.perf_counter() - t, time.process_time() - c)"
        )
        command = [
            sys.executable,
            "-c",
            code,
            str(gct),
            str(attributes),
            str(genes),
            str(folder / "prepared"),
        ]
        started = time.perf_counter()
        result = subprocess.run([*command, *TISSUES], cwd=ROOT, capture_output=True, text=True)
        process_seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"prepare-expression failed:\n{result.stderr}")
        # The call itself, without Python/pandas start-up: wall seconds, and CPU seconds of all its threads.
        seconds, call_cpu = (float(v) for v in result.stdout.split()[-2:])
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb, cpu_seconds = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "training.cli", "--help"], cwd=ROOT, capture_output=True, check=True
        )
        cli_startup = time.perf_counter() - started
        matrix = np.load(folder / "prepared" / "matrix.npy", mmap_mode="r")

        scale = (REAL_GENES / args.genes) * (REAL_SAMPLES / args.samples)
        full = REAL_GENES * REAL_SAMPLES * 4 / 1e9
        print(
            f"prepare-expression: {seconds:.1f} s wall, {call_cpu:.1f} s CPU (gzip inflates in a second thread)"
        )
        print(
            f"  peak RSS {peak_mb:.0f} MB for an output of {matrix.shape[0]:,} samples × {matrix.shape[1]:,} genes "
            f"({matrix.nbytes / 1e6:.0f} MB; {kept:,} listed genes); the whole real matrix would be {full:.1f} GB"
        )
        print(f"  {text_bytes / 1e6 / seconds:.0f} MB/s of GCT text, {args.genes / seconds:,.0f} rows/s")
        print(
            f"  extrapolated to the real 56,200 × 17,382 file (time grows with rows × row width): "
            f"about {seconds * scale:.0f} s wall here, {call_cpu * scale:.0f} s of CPU"
        )
        print(
            f"  the child process took {process_seconds:.1f} s in all, {cpu_seconds:.1f} s CPU (with imports); "
            f"`rnagan` CLI start-up adds {cli_startup:.1f} s (it imports every command module)"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
