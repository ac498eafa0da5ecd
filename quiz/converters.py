"""URL converters and form-integer parsing for the quiz: values out of range never reach a query.

Django's `<int:…>` matches any run of digits, and a position of 2**63 or 10**30 then overflowed the
database driver (a 500, with any token, even a made-up one). Here a position is 1 … POSITION_MAX,
written without a leading zero, and a token is what `new_game_token` produces (URL-safe Base64),
so anything else is a 404 from the resolver before a view runs.
"""

from __future__ import annotations

import re

# A game has at most a few dozen rounds (RNAGAN_QUIZ_ROUNDS, 20 by default); rounds are a
# PositiveSmallIntegerField, so four digits stay far inside every database's range.
POSITION_MAX = 9999
_POSITION = r"[1-9][0-9]{0,3}"
_POSITION_RE = re.compile(_POSITION)
# token_urlsafe(24) is 32 characters; the column holds 43. Unicode, NUL bytes and dots never match.
TOKEN_MAX_LENGTH = 43
_TOKEN = rf"[A-Za-z0-9_-]{{1,{TOKEN_MAX_LENGTH}}}"


class PositionConverter:
    regex = _POSITION

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        if not 1 <= int(value) <= POSITION_MAX:
            raise ValueError(f"position {value} is outside 1…{POSITION_MAX}")
        return str(int(value))


class TokenConverter:
    regex = _TOKEN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        if not re.fullmatch(_TOKEN, value):
            raise ValueError("not a game token")
        return value


def position_from_form(raw: object) -> int | None:
    """A round position posted in a form, or None when it is not one (ASCII digits only, in range).

    `int()` alone would accept ' 7', '٧' (Arabic-Indic seven) and '1_0', of any size; the URL
    converter's rule keeps both doors alike.
    """
    if not isinstance(raw, str) or not _POSITION_RE.fullmatch(raw):
        return None
    return int(raw)
