"""Every management command of the project answers bad arguments with one line and exit status 2.

The table below lists bad arguments for each command; a command of a project app that is missing
from it fails `test_every_project_command_has_a_row_of_bad_arguments`, so a new app's commands join
the table when they are written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import ManagementUtility, get_commands, load_command_class

from config.commands import ProjectCommand
from generation.models import Checkpoint
from tests.conftest import ROOT
from tests.generation.conftest import make_gan_run
from tests.support.damage import corrupt_tensor_bytes, random_lmdb

pytestmark = pytest.mark.django_db


def project_commands() -> dict[str, str]:
    """Command name → app name, for the apps whose code lives in this repository."""
    # The virtual environment may live inside the checkout (`make` puts it in .venv/): its apps are not ours.
    venv = Path(sys.prefix).resolve()
    ours = {
        a.name for a in apps.get_app_configs()
        if Path(a.path).resolve().is_relative_to(ROOT) and not Path(a.path).resolve().is_relative_to(venv)
    }
    return {name: app for name, app in get_commands().items() if app in ours}


@pytest.fixture
def inputs(tmp_path):
    """Files the table's arguments name: {placeholder: path}."""
    not_an_image = tmp_path / "tiles" / "broken.png"
    not_an_image.parent.mkdir()
    not_an_image.write_bytes(b"\x89PNG but not really")
    corrupt_run = make_gan_run(tmp_path / "corrupt-run")
    corrupt_tensor_bytes(corrupt_run / "generator_ema.safetensors")
    Checkpoint.objects.create(name="known-gan", kind=Checkpoint.Kind.GAN, tissue="Lung", run_dir="/nonexistent",
                              weights_sha256="0" * 64)
    return {
        "MISSING": str(tmp_path / "missing"),
        "A_FILE": str(not_an_image),
        "BROKEN_TILES": str(not_an_image.parent),
        "RANDOM_LMDB": str(random_lmdb(tmp_path / "random.lmdb")),
        "CORRUPT_RUN": str(corrupt_run),
        "EMPTY_DIR": str((tmp_path / "empty").mkdir() or tmp_path / "empty"),
    }


BAD_ARGUMENTS: dict[str, list[list[str]]] = {
    "import_tiles": [
        [],
        ["--folder", "MISSING", "--tissue", "Lung"],
        ["--folder", "A_FILE", "--tissue", "Lung"],
        ["--folder", "BROKEN_TILES", "--tissue", "Lung"],
        ["--lmdb", "MISSING", "--tissue", "Lung"],
        ["--lmdb", "RANDOM_LMDB", "--tissue", "Lung"],
        ["--lmdb", "EMPTY_DIR", "--tissue", "Lung"],
        ["--folder", "BROKEN_TILES", "--tissue", "Lung", "--limit", "0"],
        ["--folder", "BROKEN_TILES", "--tissue", "  "],
        ["--folder", "BROKEN_TILES", "--tissue", "Lung", "--exclude-slide", "GTEX-X"],
    ],
    "pregenerate": [
        [],
        ["--checkpoint", "nope", "--n", "5"],
        ["--checkpoint", "known-gan", "--n", "0"],
        ["--checkpoint", "known-gan", "--n", str(10**30)],
        ["--checkpoint", "known-gan", "--n", "many"],
        ["--checkpoint", "known-gan", "--n", "3", "--seed", str(2**64)],
        ["--checkpoint", "known-gan", "--n", "3", "--timeout", "nan"],
        ["--checkpoint", "known-gan", "--n", "3", "--sample", "GTEX-X"],
        ["--checkpoint", "known-gan", "--n", "3", "--expression-file", "MISSING"],
    ],
    "showcase": [
        [],
        ["--checkpoint", "nope"],
        ["--checkpoint", "known-gan"],
        ["--checkpoint", "known-gan", "--per-sample", "0"],
        ["--checkpoint", "known-gan", "--per-sample", "many"],
    ],
    "register_checkpoint": [
        [],
        ["MISSING", "--name", "x"],
        ["EMPTY_DIR", "--name", "x"],
        ["CORRUPT_RUN", "--name", "corrupt"],
    ],
    "export_scores": [
        [],
        ["--study", "nope", "--out", "MISSING"],
        ["--game", "--out", "A_FILE"],
        ["--study", "nope", "--game", "--out", "MISSING"],
    ],
    "study_import": [
        [],
        ["--study", "nope", "--ratings", "MISSING"],
        ["--study", "nope", "--ratings", "A_FILE"],
    ],
    "study_stats": [
        [],
        ["--ratings", "MISSING"],
        ["--ratings", "A_FILE"],
        ["--study", "nope"],
    ],
    "study_create": [
        [],
        ["--name", "x", "--tissues", "Lung", "--per-cell", "0"],
        ["--name", "x", "--tissues", "Lung", "--per-cell", "1"],
        ["--name", "x", "--tissues", "Lung", "--per-cell", str(10**30)],
        ["--name", "not a slug", "--tissues", "Lung", "--per-cell", "1"],
        ["--name", "x", "--tissues", "Lung", "--per-cell", "1", "--selection", "best-of"],
        ["--name", "x", "--tissues", "Lung", "--per-cell", "1", "--sources", "photo"],
        ["--name", "x", "--tissues", "Lung", "--per-cell", "1", "--seed", str(2**64)],
        ["--name", "x", "--tissues", "Lung", "--per-cell", "1", "--cover-file", "MISSING"],
        ["--name", "x", "--tissues", "Lung", "--per-cell", "1", "--cover-file", "A_FILE"],
    ],
    "study_invite": [
        [],
        ["--study", "nope", "--n", "1"],
        ["--study", "nope", "--n", "many"],
    ],
    "study_demo": [
        [],  # the test database's catalog is empty: the demo study cannot be drawn
    ],
    "audit_blinding": [
        ["--n", "5"],
        ["--n", "many"],
        ["--threshold", "2"],
    ],
    "demo": [
        ["--port", "0"],
        ["--port", "70000"],
        ["--port", str(2**70)],
        ["--real-per-tissue", "0", "--prepare-only"],
        ["--synthetic-per-arm", "-3", "--prepare-only"],
    ],
}
CASES = [(name, argv) for name, table in BAD_ARGUMENTS.items() for argv in table]


def run_command(argv: list[str], capsys) -> tuple[int, str]:
    """Run `manage.py ARGV` in this process as the shell would; (exit status, stderr)."""
    try:
        ManagementUtility(["manage.py", *argv]).execute()
        status = 0
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    return status, capsys.readouterr().err


def test_every_project_command_is_a_project_command():
    for name, app in project_commands().items():
        assert isinstance(load_command_class(app, name), ProjectCommand), f"{app}: {name} is a plain BaseCommand"


def test_every_project_command_has_a_row_of_bad_arguments():
    assert set(project_commands()) <= set(BAD_ARGUMENTS), "add the new command's bad arguments to the table"


@pytest.mark.parametrize(("name", "argv"), CASES, ids=[f"{n} {' '.join(a)}"[:80] for n, a in CASES])
def test_bad_arguments_get_one_line_and_status_2(name, argv, inputs, capsys):
    status, err = run_command([name, *(inputs.get(a, a) for a in argv)], capsys)
    assert status == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "a refusal must say why"
    if lines[-1].startswith("CommandError:"):
        assert len(lines) == 1, err  # our refusals are one line; argparse's usage + error are its own


def test_an_unexpected_error_prints_its_traceback_and_says_it_is_a_bug(monkeypatch, capsys):
    def explode(**kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("generation.management.commands.register_checkpoint.checkpoint_register", explode)
    status, err = run_command(["register_checkpoint", "somewhere", "--name", "x"], capsys)
    assert status == 1
    assert "Traceback" in err and "ZeroDivisionError" in err
    assert err.strip().splitlines()[-1].startswith("register_checkpoint: this is a bug in RNA-GAN")


def test_a_command_that_succeeds_exits_0(tmp_path, capsys):
    folder = tmp_path / "fine"
    folder.mkdir()
    status, err = run_command(["import_tiles", "--folder", str(folder), "--tissue", "Lung"], capsys)
    assert (status, err) == (0, "")

