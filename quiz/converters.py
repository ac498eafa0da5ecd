"""URL converters and form-integer parsing for the quiz: values out of range never reach a query.

Positions use the project's bounded `<position:…>` converter (config/converters.py); a token is what
`new_game_token` produces (URL-safe Base64), so anything else is a 404 from the resolver before a view
runs, and a posted position follows the converter's rule.
"""

from __future__ import annotations

import re

from config.converters import POSITION_RE

# token_urlsafe(24) is 32 characters; the column holds 43. Unicode, NUL bytes and dots never match.
TOKEN_MAX_LENGTH = 43
_TOKEN = rf"[A-Za-z0-9_-]{{1,{TOKEN_MAX_LENGTH}}}"


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
    if not isinstance(raw, str) or not POSITION_RE.fullmatch(raw):
        return None
    return int(raw)
