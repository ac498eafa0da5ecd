"""End-to-end pregeneration throughput: generate, JPEG-encode, write files, insert rows in PostgreSQL.

Runs the same code a Celery worker runs (`generation.jobs.generation_job_run`), in this process, on a
database of its own (`rnagan_bench`, created and migrated here) and a media folder under var/bench/.
The generator has random weights of the chosen size: throughput does not depend on training.

    .venv/bin/python bench/pregenerate.py                     # CPU: a small generator, 512 tiles
    .venv/bin/python bench/pregenerate.py --model paper --n 100000 --batch 1024   # on a GPU box

Target on one H100: ≥ 10,000 tiles/s end to end (the generator alone runs ~40,000/s there).
Prints tiles/s end to end and the share of time in each stage.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = {
    # 2048-d input, 256 px, DCGAN widths: the paper-sized generator.
    "paper": dict(input_dim=2048, image_size=256),
    # What a 2-core CPU can push in a benchmark run.
    "small": dict(input_dim=128, image_size=256, g_width=16, g_max_width=256, d_width=16, d_max_width=256),
}


def make_run(run: Path, model: str) -> Path:
    import torch

    from training.inference.generate import save_generator_run
    from training.networks.gan import GANConfig, Generator, count_parameters, generator_flops, init_weights

    config = GANConfig(**MODELS[model])
    torch.manual_seed(0)
    generator = Generator(config)
    init_weights(generator)
    save_generator_run(run, generator, tissue="Lung")
    print(f"generator '{model}': {count_parameters(generator) / 1e6:.1f} M parameters, "
          f"{generator_flops(config) / 1e9:.2f} GFLOP a tile")
    return run


def _timed_pool(spent):
    """A ThreadPoolExecutor whose map() time counts as encode+write."""
    from concurrent.futures import ThreadPoolExecutor

    class TimedPool(ThreadPoolExecutor):
        def map(self, fn, *iterables, **kwargs):
            t = time.perf_counter()
            results = list(super().map(fn, *iterables, **kwargs))
            spent["encode+write"] += time.perf_counter() - t
            return iter(results)

    return TimedPool


def setup_django(database: str) -> None:
    import psycopg

    admin = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    os.environ["DATABASE_URL"] = admin.rsplit("/", 1)[0].replace("postgresql://", "postgres://") + f"/{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default=None, help="default: paper on CUDA, small on CPU")
    parser.add_argument("--n", type=int, default=None, help="tiles (default: 20,000 on CUDA, 512 on CPU)")
    parser.add_argument("--batch", type=int, default=None, help="tiles per generator call (default 1024 CUDA / 64 CPU)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="JPEG encoder threads")
    parser.add_argument("--database", default="rnagan_bench")
    args = parser.parse_args()

    import torch

    cuda = torch.cuda.is_available()
    model = args.model or ("paper" if cuda else "small")
    n = args.n or (20_000 if cuda else 512)
    batch = args.batch or (1024 if cuda else 64)
    bench_dir = ROOT / "var" / "bench" / "pregenerate"
    shutil.rmtree(bench_dir, ignore_errors=True)
    os.environ["MEDIA_ROOT"] = str(bench_dir / "media")
    os.environ["RNAGAN_ENCODE_THREADS"] = str(args.threads)
    setup_django(args.database)

    from django.conf import settings

    from generation import jobs, services
    from generation.models import Tile
    from generation.services import checkpoint_register, generation_job_create

    run = make_run(bench_dir / "run", model)
    checkpoint = checkpoint_register(run_dir=str(run), name=f"bench-{model}")
    device = "cuda" if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {torch.cuda.get_device_name() if cuda else device}; {n} tiles, batch {batch}, "
          f"{args.threads} encoder threads, catalog size {settings.RNAGAN_TILE_SIZE}")

    # Time each stage by wrapping the functions the job calls.
    spent = {"generate": 0.0, "encode+write": 0.0, "rows": 0.0}

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t
        return wrapper

    import training.inference.generate

    training.inference.generate.generate = timed("generate", training.inference.generate.generate)
    services.ThreadPoolExecutor = _timed_pool(spent)
    services.Tile.objects.bulk_create = timed("rows", services.Tile.objects.bulk_create)

    # Warm-up: load the checkpoint, first CUDA kernels, first queries.
    warm = generation_job_create(checkpoint=checkpoint, requested=min(batch, 64))
    jobs.generation_job_run(job_pk=warm.pk, batch_size=batch)
    for key in spent:
        spent[key] = 0.0

    job = generation_job_create(checkpoint=checkpoint, requested=n)
    started = time.perf_counter()
    job = jobs.generation_job_run(job_pk=job.pk, batch_size=batch)
    elapsed = time.perf_counter() - started
    made = Tile.objects.filter(job=job).count()
    files = sum(1 for p in (bench_dir / "media").rglob("*.jpg"))
    assert job.status == "done" and made == n, (job.status, made, job.error)

    print(f"end to end: {n / elapsed:,.0f} tiles/s ({elapsed:.2f} s for {made} tiles, {files} files)")
    for stage, seconds in spent.items():
        print(f"  {stage:<11} {seconds:7.2f} s  {100 * seconds / elapsed:5.1f} %  ({n / max(seconds, 1e-9):,.0f} tiles/s alone)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
