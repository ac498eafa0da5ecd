"""Benchmark of the statistics: 1,000,000 game answers and a 100-rater × 600-tile study in PostgreSQL.

    .venv/bin/python bench/stats.py [--games 50000] [--rounds 20] [--raters 100] [--per-cell 100] [--keep]

It creates its own PostgreSQL database (dropped at the end unless --keep), migrates it, and fills it fast:
the catalog and the study's design through the ORM (`study_create`, `study_invite`), the game rounds and
the ratings with COPY. Then, each in a fresh child process so that its peak memory is its own:

- the statistics task (`stats.tasks.stats_refresh` body, forced): wall time, game and study apart;
- the staff page rendered from the cache (Django test client, 30 requests): median and p95;
- the game export and the study export (`export_scores`): wall time and peak RSS.

Targets on 2 cores: task < 60 s, page < 200 ms, export < 60 s with peak memory < 500 MB.
Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and Redis on 127.0.0.1:6379, like `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
SETTINGS = """\
from config.settings import *  # noqa: F401,F403

STORAGES["staticfiles"] = {{"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
CACHES["default"]["KEY_PREFIX"] = "stats-bench-{nonce}"  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
"""

PEAK = """
def peak_mb():
    # VmHWM is this process's own high-water mark; ru_maxrss would carry the parent's peak across exec.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

TASK = PEAK + """
import json, time, django
django.setup()
from stats import services
from studies.models import Study
t0 = time.perf_counter(); services.game_stats_refresh(force=True); game = time.perf_counter() - t0
t1 = time.perf_counter()
for study in Study.objects.all():
    services.study_stats_refresh(study=study, force=True)
study = time.perf_counter() - t1
print(json.dumps({"game_s": game, "study_s": study, "total_s": game + study,
                  "peak_rss_mb": peak_mb()}))
"""

EXPORT = PEAK.replace("{", "{{").replace("}", "}}") + """
import io, json, time, django
django.setup()
from django.core.management import call_command
t0 = time.perf_counter()
call_command("export_scores", *{what!r}, "--out", {out!r}, stdout=io.StringIO())
print(json.dumps({{"wall_s": round(time.perf_counter() - t0, 1),
                  "peak_rss_mb": round(peak_mb())}}))
"""

PAGE = """
import json, statistics, time, django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
user, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
client = Client()
client.force_login(user)
times = []
for _ in range(30):
    t0 = time.perf_counter(); response = client.get("/stats/"); times.append(time.perf_counter() - t0)
    assert response.status_code == 200 and b"Computed at" in response.content, response.status_code
times.sort()
print(json.dumps({"median_ms": 1000 * statistics.median(times), "p95_ms": 1000 * times[int(0.95 * len(times)) - 1],
                  "bytes": len(response.content)}))
"""


def database(name: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@{HOST}:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def child_env(db: str, settings_dir: Path) -> dict:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "stats_bench_settings", "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "stats-bench", "ALLOWED_HOSTS": "testserver,127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0", "DATABASE_URL": f"postgres://postgres@{HOST}:5432/{db}",
            "CACHE_URL": os.environ.get("CACHE_URL", f"redis://{HOST}:6379/12"),
            "PYTHONPATH": f"{settings_dir}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "2"}


def run_child(code: str, env: dict) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON line last, its figures (with its own peak RSS)."""
    process = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if process.returncode != 0:
        raise SystemExit(f"child failed:\n{process.stderr[-3000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def fill(args) -> dict:
    """Catalog, games and the study; returns counts. Runs in this process (django set up by main)."""
    import numpy as np
    import pandas as pd
    from django.db import connection
    from django.utils import timezone

    from generation.models import Checkpoint, Tile
    from studies import services as study_services
    from studies.models import Item, Rater

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    tissues = ["Lung", "Brain - Cortex"]
    checkpoints = {kind: Checkpoint.objects.create(name=f"bench-{kind}", kind=kind, tissue="all", run_dir="/runs/x",
                                                   weights_sha256="0" * 64, config={"kind": kind},
                                                   vae_run_dir="/runs/vae" if kind == "rnagan" else "")
                   for kind in ("gan", "rnagan")}
    tiles = []
    per_cell = max(args.per_cell, args.game_tiles // 6)
    for source in ("real", "gan", "rnagan"):
        for tissue in tissues:
            for k in range(per_cell):
                tiles.append(Tile(source=source, tissue=tissue, image=f"tiles/bench/{source}-{tissue}-{k}.jpg",
                                  sha256=uuid.uuid4().hex * 2, width=256, height=256,
                                  checkpoint=checkpoints.get(source), seed=None if source == "real" else k))
    tiles = Tile.objects.bulk_create(tiles, batch_size=5000)
    ids = np.array([t.pk for t in tiles])
    sources = np.array([t.source for t in tiles])

    games, rounds = args.games, args.rounds
    now = timezone.now()
    with connection.cursor() as cursor, cursor.cursor.copy(
            "COPY quiz_game (token, share_token, nickname, session_key, seed, n, created, expires, completed, score) "
            "FROM STDIN") as copy:
        for g in range(games):
            copy.write_row((f"bench-{g}", f"bench-share-{g}", "", f"session-{g // 2}", g, rounds, now, now, now, 0))
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM quiz_game")
        first_game = cursor.fetchone()[0]
    # Each game deals `rounds` distinct tiles (the unique constraint), sources independent per round.
    picks = np.argsort(rng.random((games, len(ids))), axis=1)[:, :rounds] if len(ids) <= 400 else np.stack(
        [rng.choice(len(ids), rounds, replace=False) for _ in range(games)])
    flat = picks.ravel()
    synthetic = sources[flat] != "real"
    correct = rng.random(flat.size) < 0.62
    answers = np.where(correct == synthetic, "synthetic", "real")
    frame = pd.DataFrame({
        "game_id": np.repeat(np.arange(games) + first_game, rounds), "position": np.tile(np.arange(1, rounds + 1), games),
        "tile_id": ids[flat], "source": sources[flat], "answer": answers,
        "confidence": np.where(rng.random(flat.size) < 0.6, "sure", "unsure"), "correct": np.where(correct, "t", "f"),
        "answered_at": now.isoformat()})
    buffer = frame.to_csv(index=False, header=False)
    with connection.cursor() as cursor, cursor.cursor.copy(
            "COPY quiz_gameround (game_id, position, tile_id, source, answer, confidence, correct, answered_at) "
            "FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(buffer)
    del buffer, frame
    games_s = time.perf_counter() - started

    started = time.perf_counter()
    study = study_services.study_create(name="bench", tissues=tissues, per_cell=args.per_cell, anchors=30,
                                        repeats=10, seed=1)
    study_services.study_invite(study=study, n=args.raters)
    items = pd.DataFrame.from_records(list(Item.objects.filter(rater__study=study).values_list(
        "id", "rater__index", "study_tile__source", "study_tile__tissue")), columns=["id", "rater", "source", "tissue"])
    base = items["source"].map({"real": 3.6, "rnagan": 3.0, "gan": 2.3}).to_numpy()
    quality = np.clip(np.rint(base + rng.normal(0, 0.5, args.raters)[items["rater"]] + rng.normal(0, 0.8, len(items))), 1, 5)
    items["tissue_answer"] = np.where((items["source"] == "gan") & (rng.random(len(items)) < 0.25),
                                      np.where(items["tissue"] == tissues[0], tissues[1], tissues[0]), items["tissue"])
    ratings = pd.DataFrame({
        "item_id": items["id"], "tissue_answer": items["tissue_answer"], "quality": quality.astype(int),
        "artifacts": np.where(rng.random(len(items)) < items["source"].map({"real": .17, "rnagan": .56, "gan": .7}), "t", "f"),
        "comment": "", "seconds": rng.gamma(4, 3, len(items)).round(2), "active_seconds": rng.gamma(4, 2.5, len(items)).round(2),
        "answered_at": now.isoformat(), "revisions": 1})
    with connection.cursor() as cursor, cursor.cursor.copy(
            "COPY studies_rating (item_id, tissue_answer, quality, artifacts, comment, seconds, active_seconds, "
            "answered_at, revisions) FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL (comment))") as copy:
        copy.write(ratings.to_csv(index=False, header=False))
    from django.db.models import F
    Rater.objects.filter(study=study).update(next_position=F("n_items") + 1, finished_at=now)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"game_rounds": int(flat.size), "games": games, "ratings": len(ratings), "raters": args.raters,
            "study_tiles": 6 * args.per_cell, "fill_games_s": round(games_s, 1),
            "fill_study_s": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--game-tiles", type=int, default=3000, help="catalog tiles the games deal from")
    parser.add_argument("--raters", type=int, default=100)
    parser.add_argument("--per-cell", type=int, default=100, help="study tiles per (source, tissue): 6 cells")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    db = f"rnagan_stats_bench_{os.getpid()}"
    nonce = uuid.uuid4().hex[:8]
    settings_dir = Path(tempfile.mkdtemp(prefix="stats-bench-"))
    (settings_dir / "stats_bench_settings.py").write_text(SETTINGS.format(nonce=nonce))
    env = child_env(db, settings_dir)
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONPATH"})
    sys.path[:0] = [str(settings_dir), str(ROOT)]
    database(db)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        report = {"filled": fill(args)}
        print("filled:", report["filled"], flush=True)
        report["task"] = run_child(TASK, env)
        print("task:", report["task"], flush=True)
        report["page"] = run_child(PAGE, env)
        print("page:", report["page"], flush=True)
        with tempfile.TemporaryDirectory() as scratch:
            for what in (["--game"], ["--study", "bench"]):
                name = f"export_{what[-1].strip('-')}"
                target = Path(scratch) / name
                report[name] = run_child(EXPORT.format(what=what, out=str(target)), env)
                report[name]["files_mb"] = round(sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) / 2**20, 1)
                print(f"{name}:", report[name], flush=True)
        print(json.dumps(report))
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            database(db, drop_only=True)


if __name__ == "__main__":
    main()
