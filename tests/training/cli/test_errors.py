"""Every `rnagan` command answers bad input with one line on stderr and exit status 2, never a traceback.

The table names bad arguments for each command (placeholders in capitals are files made by `inputs`);
a command missing from it fails `test_every_command_has_a_row_of_bad_arguments`. Unexpected errors are
bugs: their traceback is printed with a line saying so, and the status is 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from tests.support.damage import corrupt_tensor_bytes, random_lmdb, safetensors_metadata
from tests.training.data.test_expression import make_cohort
from tests.training.inference.test_generate import make_run, write_prepared, write_vae_run
from tests.training.loops.test_train_gan import _tile_store
from training.cli import rnagan
from training.cli.rnagan import build_parser, main
from training.inference.generate import load_generator
from training.utils.checkpoints import CheckpointError
from training.utils.runs import CHECKSUM_KEY, save_weights

NO_SUCH_GPU = f"cuda:{torch.cuda.device_count()}"  # one past the last visible device, on any machine


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad-inputs")
    cohort = make_cohort(root / "cohort")
    a_file = root / "a-file.txt"
    a_file.write_text("something that is not what the option wants\n")
    full = root / "full"
    full.mkdir()
    (full / "keep.png").write_bytes(b"precious")
    (root / "empty").mkdir()
    good = make_run(root / "good-run")
    corrupt = make_run(root / "corrupt-run")
    corrupt_tensor_bytes(corrupt / "generator_ema.safetensors", fill=b"\x7f")
    flat = make_run(root / "flat-run")
    weights = load_generator(flat, device="cpu").model.state_dict()
    save_weights(flat / "generator_ema.safetensors", {k: torch.zeros_like(v) for k, v in weights.items()})
    prepared = write_prepared(root / "prepared", {"sample_id": ["GTEX-A-0001-SM-1", "GTEX-B-0001-SM-1"],
                                                  "slide_id": ["GTEX-A-0001", "GTEX-B-0001"],
                                                  "tissue": ["Lung", "Lung"], "split": ["train", "val"]})
    table = root / "bad-table.csv"
    table.write_bytes(b"\x00\xff" * 64)
    return {
        "MISSING": str(root / "missing"), "A_FILE": str(a_file), "FULL_DIR": str(full),
        "EMPTY_DIR": str(root / "empty"), "NEW_OUT": str(root / "never-written"),
        "GCT": str(cohort.gct), "ATTRIBUTES": str(cohort.attributes), "GENE_LIST": str(cohort.gene_list),
        "RANDOM_LMDB": str(random_lmdb(root / "random.lmdb")),
        "TILES": str(_tile_store(root / "tiles", ["GTEX-A-0001", "GTEX-B-0001"])),
        "GOOD_RUN": str(good), "CORRUPT_RUN": str(corrupt), "FLAT_RUN": str(flat),
        "VAE": str(write_vae_run(root / "vae")), "PREPARED": str(prepared), "BAD_TABLE": str(table),
        "GPU": NO_SUCH_GPU,
    }


PREPARE = ["prepare-expression", "--gct", "GCT", "--attributes", "ATTRIBUTES", "--tissues", "Lung",
           "--genes", "GENE_LIST", "--out", "NEW_OUT"]
TRAIN = ["train-gan", "--tiles", "TILES", "--tissue", "Lung", "--conditioning", "none", "--split", "all", "--out", "NEW_OUT",
         "--preset", "tiny", "--no-progress"]
GENERATE = ["generate", "--run", "GOOD_RUN", "--n", "2", "--out", "NEW_OUT", "--device", "cpu"]
VAE = ["--run", "VAE", "--device", "cpu"]

BAD_ARGUMENTS: dict[str, list[list[str]]] = {
    "info": [["info", "--colour"]],
    "synth-cohort": [
        ["synth-cohort", "--out", "NEW_OUT", "--samples-per-tissue", "0"],
        ["synth-cohort", "--out", "NEW_OUT", "--slide-size", "-5"],
        ["synth-cohort", "--out", "NEW_OUT", "--seed", str(2**64)],
        ["synth-cohort", "--out", "A_FILE"],
    ],
    "prepare-expression": [
        [*PREPARE, "--sd-floor", "-1"],
        [*PREPARE, "--sd-floor", "nan"],
        [*PREPARE, "--split", "0.5", "0.5", "0.5"],
        [*PREPARE, "--seed", str(10**30)],
        [*PREPARE[:2], "MISSING", *PREPARE[3:]],
        [*PREPARE[:2], "A_FILE", *PREPARE[3:]],
        [*PREPARE[:-1], "FULL_DIR"],
        [*PREPARE[:5], "Kidney", *PREPARE[6:]],
    ],
    "align-expression": [
        ["align-expression", "--table", "MISSING", "--prepared", "PREPARED", "--out", "NEW_OUT.csv"],
        ["align-expression", "--table", "BAD_TABLE", "--prepared", "PREPARED", "--out", "NEW_OUT.csv"],
        ["align-expression", "--table", "BAD_TABLE", "--prepared", "EMPTY_DIR", "--out", "NEW_OUT.csv"],
        ["align-expression", "--table", "BAD_TABLE", "--scaler", "A_FILE", "--out", "NEW_OUT.csv"],
    ],
    "train-vae": [
        ["train-vae", "--data", "MISSING", "--out", "NEW_OUT"],
        ["train-vae", "--data", "EMPTY_DIR", "--out", "NEW_OUT"],
        ["train-vae", "--data", "PREPARED", "--out", "NEW_OUT", "--epochs", "0"],
        ["train-vae", "--data", "PREPARED", "--out", "NEW_OUT", "--lr", "-1"],
        ["train-vae", "--data", "PREPARED", "--out", "NEW_OUT", "--hidden", "0,5"],
        ["train-vae", "--data", "PREPARED", "--out", "FULL_DIR"],
    ],
    "vae-sample": [
        ["vae-sample", "--run", "MISSING", "--tissue", "Lung", "--n", "3", "--out", "NEW_OUT.csv"],
        ["vae-sample", *VAE, "--tissue", "Lung", "--n", "0", "--out", "NEW_OUT.csv"],
        ["vae-sample", *VAE, "--tissue", "Kidney", "--n", "3", "--out", "NEW_OUT.csv"],
        ["vae-sample", *VAE, "--tissue", "Lung", "--n", "3", "--out", "NEW_OUT.csv", "--scale", "inf"],
    ],
    "vae-shift": [
        ["vae-shift", "--run", "MISSING", "--data", "PREPARED", "--from", "Lung", "--to", "Liver",
         "--out", "NEW_OUT.csv"],
        ["vae-shift", *VAE, "--data", "EMPTY_DIR", "--from", "Lung", "--to", "Liver", "--out", "NEW_OUT.csv"],
    ],
    "encode": [
        ["encode", "--run", "MISSING", "--data", "PREPARED", "--out", "NEW_OUT.csv"],
        ["encode", *VAE, "--table", "BAD_TABLE", "--out", "NEW_OUT.csv"],
    ],
    "tile-slides": [
        ["tile-slides", "MISSING", "--out", "NEW_OUT"],
        ["tile-slides", "EMPTY_DIR", "--out", "NEW_OUT", "--quality", "101"],
        ["tile-slides", "EMPTY_DIR", "--out", "NEW_OUT", "--tile-size", "3"],
        ["tile-slides", "EMPTY_DIR", "--out", "NEW_OUT", "--max-background", "1.5"],
        ["tile-slides", "EMPTY_DIR", "--out", "RANDOM_LMDB"],
    ],
    "tiles-info": [["tiles-info", "MISSING"], ["tiles-info", "RANDOM_LMDB"], ["tiles-info", "A_FILE"]],
    "tiles-export": [
        ["tiles-export", "RANDOM_LMDB", "--out", "NEW_OUT"],
        ["tiles-export", "TILES", "--out", "NEW_OUT", "--limit", "0"],
    ],
    "train-gan": [
        [*TRAIN[:2], "RANDOM_LMDB", *TRAIN[3:]],
        [*TRAIN[:2], "EMPTY_DIR", *TRAIN[3:]],
        [*TRAIN[:2], "MISSING", *TRAIN[3:]],
        [*TRAIN[:4], "Kidney", *TRAIN[5:]],
        [*TRAIN, "--batch-size", "0"],
        [*TRAIN, "--lr-g", "nan"],
        [*TRAIN, "--device", "GPU"],
        [*TRAIN[:-4], "FULL_DIR", *TRAIN[-3:]],
    ],
    "generate": [
        ["generate", "--run", "MISSING", "--n", "2", "--out", "NEW_OUT"],
        ["generate", "--run", "CORRUPT_RUN", *GENERATE[3:]],
        ["generate", "--run", "FLAT_RUN", *GENERATE[3:]],
        [*GENERATE[:5], "--out", "A_FILE", "--device", "cpu"],
        [*GENERATE[:5], "--out", "FULL_DIR", "--device", "cpu"],
        [*GENERATE[:-1], "GPU"],
        [*GENERATE[:4], "0", *GENERATE[5:]],
        [*GENERATE, "--row", "-1"],
    ],
    "evaluate": [
        ["evaluate", "--runs", "MISSING", "--tiles", "TILES", "--expression", "PREPARED", "--out", "NEW_OUT"],
        ["evaluate", "--runs", "GOOD_RUN", "--tiles", "MISSING", "--expression", "PREPARED", "--out", "NEW_OUT"],
        ["evaluate", "--runs", "GOOD_RUN", "--tiles", "TILES", "--expression", "EMPTY_DIR", "--out", "NEW_OUT"],
        ["evaluate", "--runs", "GOOD_RUN", "--tiles", "TILES", "--expression", "PREPARED", "--out", "NEW_OUT",
         "--inception-weights", "A_FILE"],
        ["evaluate", "--runs", "GOOD_RUN", "--tiles", "TILES", "--expression", "PREPARED", "--out", "NEW_OUT",
         "--tiles-per-sample", "1"],
    ],
    "report": [["report", "--eval", "MISSING", "--out", "NEW_OUT"],
               ["report", "--eval", "EMPTY_DIR", "--out", "NEW_OUT"]],
}
CASES = [(name, argv) for name, table in BAD_ARGUMENTS.items() for argv in table]


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse
        status = exit_.code
    return status, capsys.readouterr().err


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_has_a_row_of_bad_arguments():
    assert set(_subparsers(build_parser())) == set(BAD_ARGUMENTS)


def test_no_option_takes_an_unbounded_int_or_float():
    loose = [f"{name} {'/'.join(action.option_strings) or action.dest}"
             for name, parser in _subparsers(build_parser()).items()
             for action in parser._actions if action.type in (int, float)]
    assert loose == [], "use a bounded type from training.cli.options"


@pytest.mark.parametrize(("name", "argv"), CASES, ids=[" ".join(a)[:90] for _, a in CASES])
def test_bad_input_gets_one_line_and_status_2(name, argv, inputs, capsys, tmp_path):
    out = tmp_path / "out"
    values = {**inputs, "NEW_OUT": str(out), "NEW_OUT.csv": str(tmp_path / "out.csv")}
    before = sorted(p.name for p in Path(inputs["FULL_DIR"]).iterdir())
    status, err = run([values.get(a, a) for a in argv], capsys)
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    # The command's own refusals name it; argparse's "unrecognized arguments" comes from the top parser.
    assert len(lines) == 1 and lines[0].startswith("rnagan") and ": error: " in lines[0], err
    assert not out.exists() and not (tmp_path / "out.csv").exists(), "a refusal writes no output"
    assert sorted(p.name for p in Path(inputs["FULL_DIR"]).iterdir()) == before


def test_a_bug_prints_its_traceback_and_says_it_is_one(monkeypatch, capsys):
    def broken(args):
        return {}["no such key"] if args else 0

    parser = build_parser()
    monkeypatch.setattr(rnagan, "build_parser", lambda: parser)
    parser.set_defaults(func=broken)
    _subparsers(parser)["info"].set_defaults(func=broken)
    status, err = run(["info"], capsys)
    assert status == 1
    assert "Traceback" in err and "KeyError" in err
    assert err.strip().splitlines()[-1].startswith("rnagan info: this is a bug in RNA-GAN")


def test_weights_carry_a_checksum_and_a_damaged_file_is_named(tmp_path):
    run_dir = make_run(tmp_path / "run")
    weights = run_dir / "generator_ema.safetensors"
    assert len(safetensors_metadata(weights)[CHECKSUM_KEY]) == 64
    corrupt_tensor_bytes(weights)
    with pytest.raises(CheckpointError, match=rf"{weights}: damaged: its tensors do not match the checksum"):
        load_generator(run_dir, device="cpu")


def test_a_generator_drawing_one_flat_image_is_refused(inputs):
    with pytest.raises(CheckpointError, match="draws the same flat image"):
        load_generator(inputs["FLAT_RUN"], device="cpu")


def test_generate_refuses_before_loading_and_leaves_existing_tiles_alone(inputs, capsys):
    status, err = run([*GENERATE[:5], "--out", inputs["FULL_DIR"], "--device", "cpu"], capsys)
    assert status == 2 and "is a folder that is not empty" in err
    assert (Path(inputs["FULL_DIR"]) / "keep.png").read_bytes() == b"precious"


def test_a_failed_train_gan_start_leaves_no_run_folder_and_the_fixed_rerun_succeeds(inputs, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train-gan", "--tiles", inputs["TILES"], "--conditioning", "none", "--split", "all", "--out", str(out),
            "--preset", "tiny", "--epochs", "1", "--batch-size", "4", "--max-steps", "1", "--no-progress",
            "--set", "grid_columns=2", "--set", "bn_batches=1"]
    status, err = run([*argv, "--tissue", "Kidney"], capsys)
    assert status == 2 and "no slides of tissue 'Kidney'" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no hidden staging folder either
    status, err = run([*argv, "--tissue", "Lung"], capsys)
    assert status == 0, err
    assert (out / "config.json").exists() and (out / "generator_ema.safetensors").exists()


def test_train_gan_on_a_corrupt_store_is_one_line(inputs, tmp_path, capsys):
    status, err = run([*(inputs.get(a, a) for a in TRAIN[:2]), inputs["RANDOM_LMDB"], "--tissue", "Lung",
                       "--conditioning", "none", "--split", "all", "--out", str(tmp_path / "run")], capsys)
    assert status == 2
    assert err.strip() == (f"rnagan train-gan: error: {inputs['RANDOM_LMDB']}: not a readable tile store "
                           "(MDB_INVALID: File is not an LMDB file); rebuild it with rnagan tile-slides")



def test_a_corrupt_store_is_refused_by_the_reader_and_by_the_writer(inputs):
    from training.data.tile_store import TileStore, TileStoreError, TileStoreWriter

    for open_store in (TileStore, TileStoreWriter):
        with pytest.raises(TileStoreError, match="not a readable tile store .*rebuild it with rnagan tile-slides"):
            open_store(inputs["RANDOM_LMDB"])
