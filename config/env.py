"""The one place that reads the process environment.

Every setting that can change between the demo, tests and production is read here, so that a
deployment's whole surface is visible in one file and a missing production secret fails at start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


class ImproperlyConfiguredEnv(RuntimeError):
    """Raised at start-up when the environment cannot describe a safe deployment."""


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def _list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not a whole number") from None


@dataclass(frozen=True)
class Env:
    debug: bool
    secret_key: str
    allowed_hosts: list[str]
    csrf_trusted_origins: list[str]
    database_url: str
    broker_url: str
    result_backend: str | None
    cache_url: str
    var_dir: Path
    media_root: Path
    static_root: Path
    tile_size: int
    generation_queue: str
    generation_batch: int
    encode_threads: int
    pool_min: int
    tile_max_exposures: int
    tile_served_bytes: int
    quiz_rounds: int
    quiz_game_ttl: int
    client_ip_header: str | None
    demo_cohort: bool
    secure_ssl_redirect: bool
    export_salt: str

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")


DEV_SECRET_KEY = "rnagan-insecure-development-key-never-use-in-production"


def read_env() -> Env:
    """Read and validate the environment; raise with a clear message when production is unsafe."""
    debug = _flag("DJANGO_DEBUG", default=False)
    var_dir = Path(os.environ.get("RNAGAN_VAR_DIR") or BASE_DIR / "var").resolve()

    secret_key = os.environ.get("DJANGO_SECRET_KEY", "")
    if not secret_key:
        if not debug:
            raise ImproperlyConfiguredEnv(
                "DJANGO_SECRET_KEY is not set. It is required when DJANGO_DEBUG is off (production). "
                "Set DJANGO_SECRET_KEY to a long random string, or set DJANGO_DEBUG=1 for local development."
            )
        secret_key = DEV_SECRET_KEY

    default_hosts = ["127.0.0.1", "localhost", "[::1]"] if debug else []
    allowed_hosts = _list("ALLOWED_HOSTS", default_hosts)
    if not debug and not allowed_hosts:
        raise ImproperlyConfiguredEnv(
            "ALLOWED_HOSTS is empty while DJANGO_DEBUG is off: list the host names the site answers to, "
            "comma-separated (for example ALLOWED_HOSTS=rnagan.example.org)."
        )

    return Env(
        debug=debug,
        secret_key=secret_key,
        allowed_hosts=allowed_hosts,
        csrf_trusted_origins=_list("CSRF_TRUSTED_ORIGINS", []),
        database_url=os.environ.get("DATABASE_URL") or f"sqlite:///{var_dir / 'rnagan.sqlite3'}",
        broker_url=os.environ.get("CELERY_BROKER_URL") or "filesystem://",
        result_backend=os.environ.get("CELERY_RESULT_BACKEND") or None,
        # A cache shared by web and worker processes: rate limits and the crowd statistics live here.
        cache_url=os.environ.get("CACHE_URL") or f"file://{var_dir / 'cache'}",
        var_dir=var_dir,
        media_root=Path(os.environ.get("MEDIA_ROOT") or var_dir / "media").resolve(),
        static_root=Path(os.environ.get("STATIC_ROOT") or var_dir / "static").resolve(),
        tile_size=_int("RNAGAN_TILE_SIZE", 256),
        generation_queue=os.environ.get("RNAGAN_GENERATION_QUEUE") or "rnagan",
        generation_batch=_int("RNAGAN_GENERATION_BATCH", 256),
        encode_threads=_int("RNAGAN_ENCODE_THREADS", min(16, os.cpu_count() or 1)),
        pool_min=_int("RNAGAN_POOL_MIN", 200),
        # A tile is dealt to at most this many games, then retired: a script that plays many games and
        # remembers each revealed file's source learns little about the next game.
        tile_max_exposures=_int("RNAGAN_TILE_MAX_EXPOSURES", 50),
        # Every tile is served padded to exactly this many bytes (generation/serving.py).
        tile_served_bytes=_int("RNAGAN_TILE_SERVED_BYTES", 48 * 1024),
        quiz_rounds=_int("RNAGAN_QUIZ_ROUNDS", 20),
        quiz_game_ttl=_int("RNAGAN_QUIZ_GAME_TTL", 2 * 60 * 60),
        # Behind a proxy every client shares the proxy's address: name the header carrying the real one.
        client_ip_header=os.environ.get("RNAGAN_CLIENT_IP_HEADER") or None,
        demo_cohort=_flag("RNAGAN_DEMO_COHORT", default=False),
        secure_ssl_redirect=_flag("DJANGO_SECURE_SSL_REDIRECT", default=not debug),
        # Salts the hashes that stand for players in exports. Unset, it derives from the secret key (see
        # settings), so hashes stay stable across exports of one deployment and differ between deployments.
        export_salt=os.environ.get("RNAGAN_EXPORT_SALT") or "",
    )
