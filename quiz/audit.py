"""Scripted games for `audit_blinding`: play the quiz through its own URLs and keep what a browser gets.

Audit games are started with a signed field only this site's secret can make, so a player cannot mark
their own games as audit games (which use no exposures and stay out of the crowd statistics).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse

AUDIT_SALT = "quiz.audit-game"
AUDIT_TOKEN_MAX_AGE_S = 6 * 60 * 60
_UNLIMITED = {scope: {"client": (10**9, 60), "ip": (10**9, 60)} for scope in ("start", "answer")}


def audit_token() -> str:
    return signing.dumps("audit", salt=AUDIT_SALT)


def audit_requested(value: str) -> bool:
    """Whether a start form's `audit` field carries a valid, recent audit token."""
    if not value:
        return False
    try:
        return signing.loads(value, salt=AUDIT_SALT, max_age=AUDIT_TOKEN_MAX_AGE_S) == "audit"
    except signing.BadSignature:
        return False


@dataclass(frozen=True)
class ServedTile:
    body: bytes
    headers: dict[str, str]
    synthetic: bool
    source: str
    game: int
    position: int


@dataclass
class AuditPlay:
    tiles: list[ServedTile] = field(default_factory=list)
    games: int = 0
    # Dealt tiles whose file had already been revealed (answered) in an earlier game of this audit.
    already_revealed: int = 0

    @property
    def memorisation_exposure(self) -> float:
        return self.already_revealed / len(self.tiles) if self.tiles else 0.0


class AuditError(RuntimeError):
    """The site refused a scripted game; the message says what it answered."""


def _host() -> str:
    hosts = [h for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith(".")]
    return hosts[0] if hosts else "localhost"


def audit_play(*, tiles: int, progress: Callable[[str], None] | None = None) -> AuditPlay:
    """Play audit games, each from a fresh browser, until `tiles` tiles have been received."""
    played = AuditPlay()
    revealed: set[str] = set()
    secure = bool(getattr(settings, "SECURE_SSL_REDIRECT", False))
    with override_settings(RNAGAN_QUIZ_RATE_LIMITS=_UNLIMITED):
        while len(played.tiles) < tiles:
            client = Client(HTTP_HOST=_host())
            start = client.post(reverse("quiz:start"), {"nickname": "", "audit": audit_token()}, secure=secure)
            if start.status_code != 302:
                text = start.content.decode(errors="replace")
                raise AuditError(f"starting an audit game answered {start.status_code}: {_first_alert(text)}")
            token = start["Location"].rstrip("/").split("/")[-1]
            this_game: set[str] = set()
            position = 1
            while position and len(played.tiles) < tiles:
                url = reverse("quiz:tile", kwargs={"token": token, "position": position})
                response = client.get(url, secure=secure)
                if response.status_code != 200:
                    raise AuditError(f"{url} answered {response.status_code}")
                body = response.content
                digest = hashlib.sha256(body).hexdigest()
                played.already_revealed += digest in revealed
                answer = client.post(reverse("quiz:answer", kwargs={"token": token}),
                                     {"position": position, "answer": "real", "confidence": "unsure"},
                                     HTTP_ACCEPT="application/json", secure=secure)
                if answer.status_code != 200:
                    raise AuditError(f"answering {url} answered {answer.status_code}: {answer.content[:200]!r}")
                verdict = answer.json()
                played.tiles.append(ServedTile(
                    body=body, headers=dict(response.headers), synthetic=verdict["truth"] == "synthetic",
                    source=verdict["generator"], game=played.games, position=position,
                ))
                this_game.add(digest)
                position = verdict["next"]["position"] if verdict["next"] else 0
            revealed |= this_game
            played.games += 1
            if progress and played.games % 10 == 0:
                progress(f"  {played.games} games, {len(played.tiles)} tiles")
    return played


def _first_alert(html: str) -> str:
    import re

    found = re.search(r'class="alert"[^>]*>([^<]+)<', html)
    return found.group(1).strip() if found else "(no message)"
