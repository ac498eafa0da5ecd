"""Settings read the environment in one place and refuse an unsafe production start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import ImproperlyConfiguredEnv, read_env

ROOT = Path(__file__).resolve().parents[2]


def _django_setup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "ALLOWED_", "CELERY_"))}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.DATABASES['default']['ENGINE'])"],
        cwd=ROOT, env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True, text=True, timeout=60,
    )


def test_production_without_secret_key_refuses_to_start():
    result = _django_setup({"DJANGO_DEBUG": "0", "ALLOWED_HOSTS": "example.org"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_production_with_secret_key_starts_on_sqlite_by_default(tmp_path):
    result = _django_setup({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "example.org",
                            "RNAGAN_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"


def test_database_url_selects_postgresql(tmp_path):
    result = _django_setup({"DJANGO_DEBUG": "1", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
                            "RNAGAN_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.postgresql"


def test_debug_mode_runs_without_secret_and_with_local_hosts(monkeypatch):
    monkeypatch.setenv("DJANGO_DEBUG", "1")
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    monkeypatch.delenv("ALLOWED_HOSTS", raising=False)
    env = read_env()
    assert env.debug and env.secret_key
    assert "127.0.0.1" in env.allowed_hosts


def test_production_needs_allowed_hosts(monkeypatch):
    monkeypatch.setenv("DJANGO_DEBUG", "0")
    monkeypatch.setenv("DJANGO_SECRET_KEY", "s" * 50)
    monkeypatch.delenv("ALLOWED_HOSTS", raising=False)
    with pytest.raises(ImproperlyConfiguredEnv, match="ALLOWED_HOSTS"):
        read_env()


def test_a_malformed_flag_is_named(monkeypatch):
    monkeypatch.setenv("DJANGO_DEBUG", "maybe")
    with pytest.raises(ImproperlyConfiguredEnv, match="DJANGO_DEBUG='maybe'"):
        read_env()


def test_embedded_defaults_use_the_filesystem_broker(monkeypatch, tmp_path):
    monkeypatch.setenv("DJANGO_DEBUG", "1")
    for name in ("CELERY_BROKER_URL", "DATABASE_URL", "MEDIA_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RNAGAN_VAR_DIR", str(tmp_path))
    env = read_env()
    assert env.embedded_broker
    assert env.database_url == f"sqlite:///{tmp_path / 'rnagan.sqlite3'}"
    assert env.media_root == tmp_path / "media"


def test_production_sets_security_headers():
    from django.conf import settings

    assert settings.SECURE_CONTENT_TYPE_NOSNIFF
    assert settings.X_FRAME_OPTIONS == "DENY"
    assert settings.SECURE_REFERRER_POLICY == "same-origin"
