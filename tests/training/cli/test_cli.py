"""The `rnagan` console script: --version, info, and help for every command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from training import __version__
from training.cli.rnagan import COMMAND_MODULES, build_parser, main


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"rnagan {__version__}"


def test_info_reports_versions_and_device(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rnagan"] == __version__
    assert info["packages"]["torch"].startswith("2.14.1")
    assert info["device"] in {"cpu", "cuda"}


def test_every_command_has_help():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse keeps them here
    assert "info" in commands
    for name, sub in commands.items():
        assert sub.format_help().startswith("usage: rnagan " + name), name
    assert len(COMMAND_MODULES) >= 1


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "training.cli", "info"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "torch" in result.stdout and "device:" in result.stdout


def test_building_the_parser_imports_no_numerical_library():
    # `rnagan --help` builds every command's parser; torch alone costs seconds, so each command module
    # imports its libraries inside the functions that run the command.
    code = (
        "import sys; from training.cli.rnagan import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch','numpy','pandas','scipy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
