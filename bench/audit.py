"""Benchmark of the blinding audit: the (a)–(d) AUCs on a catalog and the wall time of an N-tile audit.

    DJANGO_DEBUG=1 .venv/bin/python bench/audit.py [--n 2000] [--prepare-demo]

Runs `manage.py audit_blinding --n N --json` against the database the environment names (by default the
demo's SQLite under var/); `--prepare-demo` first builds the demo catalog (`manage.py demo
--prepare-only`, with the demo's settings). Prints each family's AUC with its 95 % interval, the
memorisation exposure and the wall time. Target: a 2,000-tile audit in under 2 minutes on 2 cores.
The audit's own exit status (non-zero when (a)–(c) exceed 0.6) is reported, not raised.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_ENV = {"DJANGO_DEBUG": "1", "RNAGAN_DEMO_COHORT": "1", "RNAGAN_POOL_MIN": "20",
            "RNAGAN_TILE_MAX_EXPOSURES": "1000"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="tiles the audit collects (default 2000)")
    parser.add_argument("--prepare-demo", action="store_true", help="build the demo catalog first")
    args = parser.parse_args(argv)
    env = {**DEMO_ENV, **os.environ}
    manage = [sys.executable, str(ROOT / "manage.py")]
    if args.prepare_demo:
        subprocess.run([*manage, "demo", "--prepare-only"], env=env, cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as folder:
        report_path = Path(folder) / "audit.json"
        started = time.perf_counter()
        result = subprocess.run([*manage, "audit_blinding", "--n", str(args.n), "--json", str(report_path)],
                                env=env, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if not report_path.exists():
            print(result.stdout + result.stderr, file=sys.stderr)
            return 1
        report = json.loads(report_path.read_text())
    for family, data in report["families"].items():
        low, high = data["ci95"]
        print(f"({family}) {data['name']:<20} AUC {data['auc']:.3f}  95% CI {low:.3f}–{high:.3f}  N={data['n']}")
    print(f"memorisation exposure {report['memorisation_exposure']:.1%} over {report['games']} games; "
          f"{report['real']} real, {report['synthetic']} synthetic tiles")
    print(f"audit of {report['n']} tiles: {seconds:.1f} s wall (command: {report['seconds']['total']:.1f} s, "
          f"of which playing {report['seconds']['playing']:.1f} s); passed at {report['threshold']}: "
          f"{report['passed']} (exit {result.returncode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
