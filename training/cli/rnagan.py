"""The `rnagan` command line.

Each command lives in a module of training.cli that exposes `register(subparsers)`; the module
adds its parser and sets `func`. Commands only parse, validate, save their config and call library
code, so everything they do is importable and testable without the CLI.

Errors follow one rule (training.utils.errors): bad arguments are refused by the parser before any
work, as one line and exit status 2; an expected error from the work (RnaganError, or an OSError naming
a file) is one line and exit status 2; anything else is a bug: its traceback, a line saying so, status 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from training import __version__
from training.utils.errors import BUG_REPORT, RnaganError, is_expected, one_line

# Order is the order of `rnagan --help`.
COMMAND_MODULES: tuple[str, ...] = ("training.cli.info", "training.cli.synth", "training.cli.expression", "training.cli.vae", "training.cli.tiles", "training.cli.gan", "training.cli.evaluate")
USAGE_STATUS, BUG_STATUS = 2, 1


class CommandError(RnaganError):
    """An error the user can fix, raised by a command module: printed without a traceback, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, whose refusals are one line (the usage is one `--help` away) with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_STATUS, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rnagan",
        description="RNA-GAN: H&E tiles from gene expression. Data preparation, training and sampling.",
    )
    parser.add_argument("--version", action="version", version=f"rnagan {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")  # its parsers are Parsers too
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return USAGE_STATUS
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print(f"rnagan {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if is_expected(exc):
            print(f"rnagan {args.command}: error: {one_line(exc)}", file=sys.stderr)
            return USAGE_STATUS
        traceback.print_exc()
        print(f"rnagan {args.command}: {BUG_REPORT}", file=sys.stderr)
        return BUG_STATUS
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
