"""Long commands killed midway (SIGKILL: no cleanup runs) leave --out absent or complete (train-gan:
resumable), and a rerun works.

Each command runs as the real `rnagan` process. The kill waits for an observable sign that the work is
under way (a log line, a file in the hidden staging folder, a checkpoint), and the test checks that the
process was still running when it was killed, so the state after the kill is truly a mid-way one.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT
from tests.training.data.test_expression import make_cohort
from tests.training.inference.test_generate import make_run, write_prepared
from tests.training.loops.test_train_gan import _tile_store
from training.data.expression import load_prepared

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
PATIENCE_S = 120  # generous for a loaded CI machine; the wait ends as soon as the sign appears


def rnagan(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.cli", *argv], env=ENV, capture_output=True, text=True,
                          timeout=PATIENCE_S)


def kill_when(argv: list[str], sign: Callable[[subprocess.Popen], bool]) -> None:
    """Start `rnagan ARGV`, wait until `sign(process)` holds, SIGKILL it; fail if it had already ended."""
    process = subprocess.Popen([sys.executable, "-m", "training.cli", *argv], env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + PATIENCE_S
    try:
        while not sign(process):
            assert process.poll() is None, f"it ended before the sign: {process.stdout.read()}"
            assert time.monotonic() < deadline, "no sign of work"
            time.sleep(0.005)  # polling an observable state, not waiting for one to happen by luck
        assert process.poll() is None, "it finished before it could be killed midway"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL


def _printed(text: str) -> Callable[[subprocess.Popen], bool]:
    def seen(process: subprocess.Popen) -> bool:
        line = process.stdout.readline()  # blocks until the next line: the log is line-buffered
        return text in line

    return seen


def _hidden(folder: Path, pattern: str, *, holding: str = "*") -> Callable[[subprocess.Popen], bool]:
    return lambda process: any(any(p.glob(holding)) for p in folder.glob(pattern))


def _big_gct(cohort, path: Path, filler_rows: int) -> Path:
    """The cohort's GCT plus many genes nobody listed: reading it takes long enough to be caught at it."""
    lines = gzip.decompress(cohort.gct.read_bytes()).decode().splitlines(keepends=True)
    n_genes, n_samples = (int(v) for v in lines[1].split())
    zeros = "\t0" * n_samples
    with open(path, "w") as handle:
        handle.write(f"#1.2\n{n_genes + filler_rows}\t{n_samples}\n")
        handle.writelines(lines[2:])
        handle.writelines(f"ENSGF{k:010d}.1\tFILLER{zeros}\n" for k in range(filler_rows))
    return path


def test_prepare_expression_killed_while_reading_leaves_no_output(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", n_genes=300, listed=250)
    gct = _big_gct(cohort, tmp_path / "big.gct", filler_rows=300_000)  # about 20 MB, a few seconds to read
    out = tmp_path / "prepared"
    argv = ["prepare-expression", "--gct", str(gct), "--attributes", str(cohort.attributes), "--tissues",
            "Lung", "--genes", str(cohort.gene_list), "--out", str(out)]
    kill_when(argv, _printed("reading 250 listed genes"))  # printed just before the GCT is streamed
    assert not out.exists() and not list(tmp_path.glob(".prepared*"))
    result = rnagan(*argv)
    assert result.returncode == 0, result.stderr
    assert load_prepared(out).matrix.shape == (10, 250)


def test_generate_killed_while_writing_tiles_leaves_no_output(tmp_path):
    run = make_run(tmp_path / "run")
    out = tmp_path / "tiles"
    argv = ["generate", "--run", str(run), "--n", "4000", "--out", str(out), "--device", "cpu"]
    kill_when(argv, _hidden(tmp_path, ".tiles.*.tmp", holding="*.png"))
    assert not out.exists()
    result = rnagan(*argv[:4], "20", *argv[5:])
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([f"tile-{k:05d}.png" for k in range(20)] + ["manifest.csv"])


def _train_gan_argv(tmp_path: Path, out: Path, epochs: int) -> list[str]:
    tiles = tmp_path / "store"
    if not tiles.exists():
        _tile_store(tiles, ["GTEX-A-0001", "GTEX-B-0001"], tiles_per_slide=8)
    return ["train-gan", "--tiles", str(tiles), "--tissue", "Lung", "--conditioning", "none", "--split", "all",
            "--out", str(out),
            "--preset", "tiny", "--epochs", str(epochs), "--batch-size", "4", "--checkpoint-every", "1",
            "--no-progress", "--set", "grid_columns=2", "--set", "bn_batches=1"]


def test_what_a_train_gan_killed_before_training_leaves_is_hidden_and_swept(tmp_path):
    # A start killed before training began leaves only its hidden staging folder (as a SIGKILL would:
    # no cleanup ran); --out does not exist, so the plain rerun is not refused, and it sweeps the leftover.
    out = tmp_path / "run"
    leftover = tmp_path / ".run.starting-killed"
    leftover.mkdir()
    (leftover / "config.json").write_text("{}")
    result = rnagan(*_train_gan_argv(tmp_path, out, epochs=1))
    assert result.returncode == 0, result.stderr
    assert (out / "generator_ema.safetensors").exists()
    assert not leftover.exists()


def test_train_gan_killed_while_training_resumes_to_completion(tmp_path):
    out = tmp_path / "run"
    argv = _train_gan_argv(tmp_path, out, epochs=200)
    kill_when(argv, lambda process: (out / "checkpoints" / "latest.json").exists())
    assert (out / "config.json").exists()  # a started run: resumable, not complete
    step = json.loads((out / "checkpoints" / "latest.json").read_text())["step"]
    result = rnagan(*argv, "--resume", "--max-steps", str(step + 2))
    assert result.returncode == 0, result.stderr
    assert (out / "generator_ema.safetensors").exists() and (out / "samples").is_dir()


def test_train_vae_killed_while_training_leaves_no_run_folder(tmp_path):
    n = 40
    prepared = write_prepared(tmp_path / "prepared", {
        "sample_id": [f"S-{k}" for k in range(n)], "slide_id": [f"s{k}" for k in range(n)],
        "tissue": ["Lung", "Liver"] * (n // 2), "split": (["train"] * 3 + ["val"]) * (n // 4),
    })
    out = tmp_path / "vae"
    argv = ["train-vae", "--data", str(prepared), "--out", str(out), "--preset", "tiny", "--device", "cpu",
            "--embedding", "none"]
    kill_when([*argv, "--epochs", "100000", "--patience", "100000"],
              _hidden(tmp_path, ".vae.starting-*", holding="scaler.npz"))
    assert not out.exists()
    result = rnagan(*argv, "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert {"config.json", "vae.safetensors", "metrics.json"} <= {p.name for p in out.iterdir()}



def test_synth_cohort_killed_while_drawing_slides_leaves_no_output_and_the_rerun_sweeps(tmp_path):
    out = tmp_path / "cohort"
    argv = ["synth-cohort", "--out", str(out), "--samples-per-tissue", "30", "--tissues", "Lung", "--genes", "200",
            "--slide-size", "1024", "--workers", "1"]
    kill_when(argv, _hidden(tmp_path, ".cohort.partial-*/slides", holding="*.tiff"))
    assert not out.exists() and list(tmp_path.glob(".cohort.partial-*"))  # the killed run's hidden build
    result = rnagan(*argv[:4], "4", *argv[5:])
    assert result.returncode == 0, result.stderr
    assert len(list((out / "slides").glob("*.tiff"))) == 4
    assert not list(tmp_path.glob(".cohort.partial-*")), "the dead run's build folder is swept"
