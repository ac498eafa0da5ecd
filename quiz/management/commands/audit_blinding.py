"""`python manage.py audit_blinding [--n N] [--json OUT] [--threshold 0.6]`: can a served tile's source be
told without looking at the tissue?

Plays scripted audit games through the site's own URLs (they use no exposures and never count in the
crowd statistics or the leaderboard), keeps every tile and its response headers as a browser receives
them, and reports the 5-fold cross-validated AUC of real-vs-synthetic for each family of features in
generation/forensics.py, with a bootstrap 95 % interval, plus the memorisation exposure. Exits with
status 3 when any of (a)–(c) is above the threshold (2: bad arguments, as every project command); (d)
measures the generators, not the blinding.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.core.management.base import CommandError

from config.commands import ProjectCommand
from generation.forensics import FAMILIES, audit_families, tile_features
from quiz.audit import AuditError, audit_play

BLINDING_FAMILIES = ("a", "b", "c")


# Exit status when the audit ran and found a leak: not "bad input" (2) nor a bug (1).
AUDIT_FAILED_STATUS = 3


class Command(ProjectCommand):
    help = "Audit the quiz's blinding: AUC of real-vs-synthetic from headers, JPEG structure and history."

    def add_arguments(self, parser):
        parser.add_argument("--n", type=int, default=2000, help="tiles to collect (default 2000)")
        parser.add_argument("--json", dest="json_out", help="also write the report as JSON to this file")
        parser.add_argument("--threshold", type=float, default=0.6,
                            help="fail when any of (a)-(c) has a higher AUC (default 0.6)")
        parser.add_argument("--threads", type=int, default=2, help="feature extraction threads")

    def handle(self, *args, n: int, json_out: str | None, threshold: float, threads: int, **options):
        if n < 20:
            raise CommandError("--n must be at least 20: the AUC needs tiles of both kinds in every fold")
        if not 0.5 <= threshold <= 1:
            raise CommandError("--threshold must be within [0.5, 1]")
        started = time.monotonic()
        try:
            played = audit_play(tiles=n, progress=self.stdout.write)
        except AuditError as exc:
            raise CommandError(f"the audit could not play: {exc}") from None
        collected = time.monotonic() - started
        labels = [t.synthetic for t in played.tiles]
        if len(set(labels)) < 2 or min(labels.count(True), labels.count(False)) < 5:
            raise CommandError(f"{len(labels)} tiles were collected, {labels.count(False)} real: too few of one kind")
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            features = list(pool.map(lambda t: tile_features(t.body, t.headers), played.tiles))
        groups = [hashlib.sha256(t.body).hexdigest() for t in played.tiles]
        aucs = audit_families(features, labels, groups=groups)
        seconds = time.monotonic() - started
        over = [f for f in BLINDING_FAMILIES if aucs[f].auc > threshold]
        for family in FAMILIES:
            flag = "" if family == "d" else ("  FAIL" if family in over else "  ok")
            note = "  (generators, not blinding)" if family == "d" else ""
            self.stdout.write(aucs[family].line() + flag + note)
        self.stdout.write(
            f"memorisation exposure: {played.memorisation_exposure:.1%} of {len(played.tiles)} dealt tiles had "
            f"been revealed in an earlier of {played.games} games; {labels.count(False)} real, "
            f"{labels.count(True)} synthetic; {seconds:.1f} s ({collected:.1f} s playing)"
        )
        report = {
            "n": len(played.tiles), "games": played.games, "threshold": threshold,
            "real": labels.count(False), "synthetic": labels.count(True),
            "families": {f: aucs[f].to_dict() for f in FAMILIES},
            "memorisation_exposure": played.memorisation_exposure,
            "seconds": {"total": round(seconds, 2), "playing": round(collected, 2)},
            "ci_method": "percentile bootstrap of out-of-fold scores (1,000 resamples)",
            "passed": not over,
        }
        if json_out:
            path = Path(json_out)
            tmp = path.with_name(path.name + ".partial")
            tmp.write_text(json.dumps(report, indent=2) + "\n")
            tmp.replace(path)
        if over:
            raise CommandError(f"blinding audit failed: {', '.join(f'({f}) AUC {aucs[f].auc:.3f}' for f in over)} "
                               f"above {threshold}", returncode=AUDIT_FAILED_STATUS)
