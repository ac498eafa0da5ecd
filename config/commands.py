"""The base of every management command of the project: `rnagan`'s rule for errors, in Django.

- An expected error (a project error, `training.utils.errors.RnaganError`; a file problem, OSError with a
  file name; a model's ValidationError; or a CommandError raised by the command) ends the command with one line on stderr
  (`CommandError: what, where, what to do`) and exit status 2, as `rnagan` and argparse do. Django's
  CommandError exits 1 by default; 2 is the status every tool of the project gives bad input, so a
  script can tell "fix your input" (2) from "the program failed" (1).
- An unexpected exception prints its traceback and a line saying it is a bug to report; exit status 1.

`tests/config/test_commands.py` checks that every management command of the project's apps is a
ProjectCommand, and runs each with bad arguments.
"""

from __future__ import annotations

import sys
import traceback

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from training.utils.errors import BUG_REPORT, is_expected, one_line

USAGE_STATUS = 2


class ProjectCommand(BaseCommand):
    """BaseCommand whose expected errors exit 2 with one line, and whose bugs say they are bugs."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            if exc.returncode == 1:  # Django's default: ours say "bad input" with 2
                raise CommandError(one_line(exc), returncode=USAGE_STATUS) from exc
            raise
        except ValidationError as exc:  # a model's own checks refused a value the user gave
            raise CommandError("; ".join(exc.messages), returncode=USAGE_STATUS) from exc
        except Exception as exc:
            if not is_expected(exc):
                raise
            raise CommandError(one_line(exc), returncode=USAGE_STATUS) from exc

    def run_from_argv(self, argv):
        try:
            super().run_from_argv(argv)
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception:
            traceback.print_exc()
            name = argv[1] if len(argv) > 1 else "command"
            print(f"{name}: {BUG_REPORT}", file=sys.stderr)
            sys.exit(1)
