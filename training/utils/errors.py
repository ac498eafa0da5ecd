"""The one base class of the errors a user can fix, and how every entry point reports an error.

Rule (README, "Reliability"): an expected error — bad input, a missing or corrupt file, an option out of
range, an output that would be overwritten — reaches the user as one line on stderr (what, which
file/row/field, what to do) and exit status 2. Anything else is a bug: its traceback is printed,
followed by BUG_REPORT, and the exit status is 1. `rnagan` (training.cli) and the management commands
(config.commands.ProjectCommand) apply it; library code raises RnaganError subclasses, which also derive
from the built-in class callers caught before (ValueError mostly), so existing handlers keep working.
"""

from __future__ import annotations

BUG_REPORT = ("this is a bug in RNA-GAN, not a problem with your input: please report it, "
              "with the traceback above and the command you ran")


class RnaganError(Exception):
    """An error the user can fix: printed as one line, exit status 2."""


class OptionError(RnaganError, ValueError):
    """A command-line option out of its range, or options that contradict each other."""


class OutputExistsError(RnaganError, FileExistsError):
    """An output that is already there and would be overwritten."""


# Raised by the project's code and the OS about the paths a user gives (with their message naming the path).
PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def is_expected(exc: BaseException) -> bool:
    """A project error, or a file problem about a path the user gave (missing, a folder, no permission,
    a disk that is full: any OSError the OS tied to a file name)."""
    return isinstance(exc, (RnaganError, *PATH_ERRORS)) or (isinstance(exc, OSError) and exc.filename is not None)


def one_line(exc: BaseException) -> str:
    """The message of an expected error as one line (a KeyError's repr quotes dropped)."""
    if isinstance(exc, OSError) and exc.filename is not None and not isinstance(exc, RnaganError):
        text = f"{exc.filename}: {exc.strerror or exc}"
    else:
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(text.split()) or type(exc).__name__
