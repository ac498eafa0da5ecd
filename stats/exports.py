"""Exports: tidy tables as CSV and Parquet, the results as JSON, the figures as SVG and a Frictionless
`datapackage.json` describing every column, written into a folder and zipped for download.

Answers stream from the database in chunks straight into the CSV and the Parquet writer, so exporting a
million answers holds one chunk in memory, never the whole table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings

from stats import selectors, services
from stats.analysis import report, schema
from stats.analysis.schema import Column
from stats.presenting import study_payload

ARROW_TYPES = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_(),
               "datetime": pa.timestamp("us", tz="UTC")}


def code_version() -> str:
    """The git commit of the running code when it is a checkout, else the installed package's version."""
    try:
        found = subprocess.run(["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True,
                               text=True, timeout=5, check=True)
        return f"git {found.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        try:
            return f"rnagan {metadata.version('rnagan')}"
        except metadata.PackageNotFoundError:
            return "unknown"


def arrow_schema(columns: Iterable[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type]) for c in columns])


def _typed(frame: pd.DataFrame, columns: tuple[Column, ...]) -> pd.DataFrame:
    out = {}
    for c in columns:
        values = frame[c.name] if c.name in frame.columns else pd.Series(pd.NA, index=frame.index)
        if c.type == "string":
            out[c.name] = values.astype("string")
        elif c.type == "integer":
            out[c.name] = pd.to_numeric(values).astype("Int64")
        elif c.type == "number":
            out[c.name] = pd.to_numeric(values).astype(float)
        elif c.type == "boolean":
            out[c.name] = values.astype("boolean")
        else:
            out[c.name] = pd.to_datetime(values, utc=True)
    return pd.DataFrame(out, index=frame.index)


class TableWriter:
    """One table as `<name>.csv` and `<name>.parquet`, appended chunk by chunk."""

    def __init__(self, folder: Path, name: str, columns: tuple[Column, ...]):
        self.folder, self.name, self.columns = folder, name, columns
        self.schema = arrow_schema(columns)
        self.csv = open(folder / f"{name}.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
        self.parquet = pq.ParquetWriter(folder / f"{name}.parquet", self.schema, compression="zstd")
        self.rows, self.header = 0, True

    def write(self, frame: pd.DataFrame) -> None:
        typed = _typed(frame, self.columns)
        typed.to_csv(self.csv, index=False, header=self.header, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        self.header = False
        self.parquet.write_table(pa.Table.from_pandas(typed, schema=self.schema, preserve_index=False))
        self.rows += len(typed)

    def close(self) -> list[dict]:
        if self.header:  # an empty table still gets its header line
            self.write(pd.DataFrame(columns=[c.name for c in self.columns]))
        self.csv.close()
        self.parquet.close()
        table_schema = schema.table_schema(self.columns)
        return [
            {"name": f"{self.name}-csv", "path": f"{self.name}.csv", "profile": "tabular-data-resource",
             "format": "csv", "mediatype": "text/csv", "encoding": "utf-8", "schema": table_schema,
             "dialect": {"delimiter": ",", "header": True}, "rnagan:rows": self.rows},
            {"name": f"{self.name}-parquet", "path": f"{self.name}.parquet", "profile": "tabular-data-resource",
             "format": "parquet", "mediatype": "application/vnd.apache.parquet", "schema": table_schema,
             "rnagan:rows": self.rows},
        ]


def write_table(folder: Path, name: str, columns: tuple[Column, ...], frames: Iterable[pd.DataFrame]) -> list[dict]:
    writer = TableWriter(folder, name, columns)
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        resources = writer.close()
    return resources


def write_results(folder: Path, result: dict, drawn: list[dict], descriptions: dict[str, str]) -> list[dict]:
    (folder / "results.json").write_text(json.dumps(result, indent=1, allow_nan=False))
    resources = [{"name": "results", "path": "results.json", "format": "json", "mediatype": "application/json",
                  "description": descriptions["results"]}]
    (folder / "figures").mkdir(exist_ok=True)
    for figure in drawn:
        path = f"figures/{figure['name']}.svg"
        (folder / path).write_text(figure["svg"])
        resources.append({"name": f"figure-{figure['name'].replace('_', '-')}", "path": path, "format": "svg",
                          "mediatype": "image/svg+xml", "description": figure["caption"]})
    return resources


def write_datapackage(folder: Path, *, name: str, title: str, description: str, resources: list[dict]) -> None:
    package = {
        "profile": "tabular-data-package", "name": name, "title": title, "description": description,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "licenses": [{"name": "CC-BY-4.0", "path": "https://creativecommons.org/licenses/by/4.0/",
                      "title": "Creative Commons Attribution 4.0"}],
        "sources": [{"title": "RNA-GAN", "path": "https://github.com/"}],
        "rnagan:code_version": code_version(), "resources": resources,
    }
    (folder / "datapackage.json").write_text(json.dumps(package, indent=1))


def export_game(folder: Path) -> Path:
    """Write the game's export into `folder` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    page = selectors.game_stats_cached()
    tables = selectors.game_tables_cached()
    # A live game is never quite up to date: rather than recompute everything in the request (all answers
    # in memory), the export takes the cached statistics and the answers they were computed from.
    if page is None or tables is None or page.get("answered_until") is None:
        page, tables = services.game_stats_compute()
    until = page["answered_until"]
    resources = write_table(folder, "answers", schema.ANSWERS,
                            selectors.game_answer_chunks(until=until) if until else iter(()))
    resources += write_table(folder, "tiles", schema.GAME_TILE_SUMMARY, [tables["tiles"]])
    resources += write_table(folder, "players", schema.PER_PLAYER, [tables["players"]])
    resources += write_results(folder, page["result"], page["figures"], {
        "results": "The game's statistics (format rnagan-stats/1): accuracy against chance, by source and tissue, "
                   "signal detection, ROC, learning, fool rates, exposures; computed from the answers in "
                   f"answers.csv (answered up to {until.isoformat() if until else 'none yet'})."})
    write_datapackage(folder, name="rnagan-game", title="RNA-GAN game answers",
                      description="Every answered round of the public real-or-synthetic game, players and games "
                                  "as salted hashes, with per-tile and per-player summaries and the statistics.",
                      resources=resources)
    return folder


def zip_folder(folder: Path, destination: Path) -> Path:
    """Zip a folder to a temporary name beside `destination`, then rename (never a half-written ZIP)."""
    partial = destination.with_name(f".{destination.name}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    os.replace(partial, destination)
    return destination


def export_zip(write, *, prefix: str):
    """Write an export into a temporary folder, zip it, and return an open handle to the ZIP (already
    unlinked: it disappears when the response closes it)."""
    with tempfile.TemporaryDirectory(prefix=f"rnagan-{prefix}-") as scratch:
        folder = write(Path(scratch) / "export")
        archive = zip_folder(folder, Path(scratch) / f"{prefix}.zip")
        handle = open(archive, "rb")  # noqa: SIM115 - closed by the streaming response
        shutil.rmtree(folder)
    return handle


def export_study(folder: Path, study) -> Path:
    """Write one study's export into `folder`: every rating, raters, per-rater and per-tile summaries, tiles,
    the statistics and figures, and datapackage.json."""
    folder.mkdir(parents=True, exist_ok=True)
    ratings, tiles, raters = selectors.study_frames(study=study)
    raters = raters.drop(columns=["label"])  # the staff's note on who a rater is never leaves the site
    cached = selectors.study_stats_cached(study=study)
    if cached is not None and cached.get("result") and cached["fingerprint"] == selectors.study_fingerprint(study=study):
        payload = cached
    elif ratings.empty:
        payload = {"result": {"format": report.FORMAT, "kind": "study", "name": study.name, "ratings": 0,
                              "note": "no ratings yet"}, "figures": []}
    else:
        payload = study_payload(report.analyse_study(ratings, raters, name=study.name, file=f"study {study.name}"))
    result = payload["result"]
    resources = write_table(folder, "ratings", schema.RATINGS, [ratings])
    resources += write_table(folder, "raters", schema.RATERS, [raters])
    resources += write_table(folder, "tiles", schema.TILES, [tiles])
    resources += write_table(folder, "per_rater", schema.PER_RATER, [pd.DataFrame(result.get("per_rater") or [],
                                                                                    columns=schema.names(schema.PER_RATER))])
    resources += write_table(folder, "tile_summary", schema.STUDY_TILE_SUMMARY,
                             [pd.DataFrame(result.get("tile_summary") or [], columns=schema.names(schema.STUDY_TILE_SUMMARY))])
    resources += write_results(folder, result, payload["figures"], {
        "results": "The study's statistics (format rnagan-stats/1): paired t and Wilcoxon tests with Holm p, the "
                   "mixed model, per-rater means, accuracy, artifacts, agreement, test–retest, time, debrief."})
    write_datapackage(folder, name=f"rnagan-study-{study.name}", title=f"RNA-GAN rating study {study.name}",
                      description="Every rating of a blinded expert rating study (raters as codes), the raters' "
                                  "profiles and debrief, the study's tiles, summaries and the statistics.",
                      resources=resources)
    return folder
