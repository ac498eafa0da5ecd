"""The `rnagan` command line.

Each command lives in a module of training.cli that exposes `register(subparsers)`; the module
adds its parser and sets `func`. Commands only parse, validate, save their config and call library
code, so everything they do is importable and testable without the CLI.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from training import __version__

# Order is the order of `rnagan --help`.
COMMAND_MODULES: tuple[str, ...] = ("training.cli.info", "training.cli.synth", "training.cli.expression", "training.cli.vae", "training.cli.tiles", "training.cli.gan", "training.cli.evaluate")


class CommandError(Exception):
    """An error the user can fix: printed without a traceback, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnagan",
        description="RNA-GAN: H&E tiles from gene expression. Data preparation, training and sampling.",
    )
    parser.add_argument("--version", action="version", version=f"rnagan {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except CommandError as exc:
        print(f"rnagan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rnagan {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
