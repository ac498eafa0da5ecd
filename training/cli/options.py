"""argparse types with ranges: an option out of range is refused by the parser, before any work starts.

`type=int` accepts 10**30 and -5 for a tile count, and `type=float` accepts nan, inf and -1 for a
floor; found later (after reading a 3 GB GCT, say) they were tracebacks. Every numeric option of
`rnagan` uses one of these (tests/training/cli/test_errors.py checks that none uses a bare int/float).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

SEED_MAX = 2**63 - 1  # seeds go into NumPy/torch generators and 64-bit database columns
COUNT_MAX = 10**9


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """A whole number in [low, high] (either bound may be open)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is outside {_range(low, high)}")
        return value

    parse.__name__ = f"integer {_range(low, high)}"
    return parse


def real(low: float | None = None, high: float | None = None, *, above: bool = False) -> Callable[[str], float]:
    """A finite number in [low, high]; with `above`, strictly greater than low."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        too_low = low is not None and (value <= low if above else value < low)
        if too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is outside {_range(low, high, above=above)}")
        return value

    parse.__name__ = f"number {_range(low, high, above=above)}"
    return parse


def _range(low, high, *, above: bool = False) -> str:
    left = "(" if above else "["
    return f"{left}{'-∞' if low is None else low}, " + ("∞)" if high is None else f"{high}]")


SEED = integer(0, SEED_MAX)
COUNT = integer(1, COUNT_MAX)  # how many of something; at least one
COUNT_OR_ZERO = integer(0, COUNT_MAX)  # 0 means "no limit" / "none" where the help says so
WORKERS = integer(0, 1024)
POSITIVE = real(0, above=True)
FRACTION = real(0, 1)
