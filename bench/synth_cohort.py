"""Speed of `rnagan synth-cohort` at its defaults: 40 samples (20 × Lung, Brain - Cortex), 2048² slides,
all 19,198 genes. Target: under a minute on 2 cores.

Runs the real command in a child process into a temporary folder and prints wall time, CPU time of
all its processes (more stable than wall time on a shared machine), and the CPU cost of drawing one
slide of each tissue in this process.

    .venv/bin/python bench/synth_cohort.py
    .venv/bin/python bench/synth_cohort.py --samples-per-tissue 5 --slide-size 4096 --workers 4
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples-per-tissue", type=int, default=20)
    parser.add_argument("--slide-size", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from training.synthetic.histology import render_slide, tissue_profile

    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for tissue in ("Lung", "Brain - Cortex"):
        started = time.process_time()
        render_slide(tissue, tissue_profile(tissue).mean, args.slide_size, seed=1)
        print(f"draw one {args.slide_size}² {tissue} slide: {time.process_time() - started:.2f} s CPU")

    with tempfile.TemporaryDirectory(prefix="synth-bench-") as tmp:
        out = Path(tmp) / "cohort"
        command = [sys.executable, "-m", "training.cli", "synth-cohort", "--out", str(out),
                   "--samples-per-tissue", str(args.samples_per_tissue), "--slide-size", str(args.slide_size),
                   "--workers", str(args.workers)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            print(result.stdout + result.stderr, file=sys.stderr)
            return result.returncode
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        samples = 2 * args.samples_per_tissue
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print(result.stdout.strip())
        print(f"synth-cohort, {samples} samples × {args.slide_size}², {args.workers} workers: "
              f"{wall:.1f} s wall (target < 60 s on 2 cores), {cpu:.1f} s CPU in all processes, "
              f"{cpu / samples:.2f} s CPU a sample, {size / 1e6:.0f} MB written")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())} (shared machine: wall times are noisy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
