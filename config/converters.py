"""The URL converter for item positions, shared by every app whose URLs carry one (game rounds, study items).

Django's `<int:…>` matches any run of digits, and a position of 2**63 or 10**30 then overflowed the
database driver (a 500 on SQLite, with any token, even a made-up one). Here a position is
1 … POSITION_MAX written without a leading zero, so anything else is a 404 from the resolver before a
view runs. Importing this module registers it as `<position:…>` (once: modules are imported once).
"""

from __future__ import annotations

import re

from django.urls import register_converter

# A game has a few dozen rounds, a rater a few hundred items; four digits stay far inside every
# database's integer range (game rounds are a PositiveSmallIntegerField).
POSITION_MAX = 9999
POSITION_PATTERN = r"[1-9][0-9]{0,3}"
POSITION_RE = re.compile(POSITION_PATTERN)


class PositionConverter:
    regex = POSITION_PATTERN

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        if not 1 <= int(value) <= POSITION_MAX:
            raise ValueError(f"position {value} is outside 1…{POSITION_MAX}")
        return str(int(value))


register_converter(PositionConverter, "position")
