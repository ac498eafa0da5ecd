"""`rnagan report`: one self-contained HTML page comparing evaluated runs side by side.

Reads the metrics.json, epochs.csv and umap.csv of one or more `rnagan evaluate` folders and writes
report.html with every figure inline (SVG from matplotlib; no script, font or image is fetched) and
metrics.json beside it (the runs of every folder, keyed by folder and run). Only Inception features of
the pytorch-fid weights are called FID; the in-domain numbers are labelled FD with the encoder named.
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from training.metrics.evaluate import EPOCHS_FILE, METRICS_FILE, UMAP_FILE
from training.synthetic.histology import PROGRAM_NAMES
from training.utils.io import atomic_open, read_json, write_json

CSS = """body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}figure{margin:1rem 0}.note{color:#555}
h2{margin-top:2rem;border-bottom:1px solid #ddd}"""


def load_evaluations(folders: Sequence[str | os.PathLike[str]]) -> dict[str, dict]:
    """{run label: its metrics entry} over every folder; labels get the folder's name when they clash."""
    runs: dict[str, dict] = {}
    for folder in folders:
        folder = Path(folder)
        if not (folder / METRICS_FILE).exists():
            raise FileNotFoundError(f"{folder}: no {METRICS_FILE} (not an `rnagan evaluate` output folder)")
        data = read_json(folder / METRICS_FILE)
        for label, entry in data.get("runs", {}).items():
            key = label if label not in runs else f"{folder.name}/{label}"
            runs[key] = {**entry, "_folder": str(folder), "_label": label,
                         "_usefulness": data.get("usefulness", {}).get(entry["conditioning"])}
    if not runs:
        raise ValueError("the evaluation folders hold no runs")
    return runs


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if value != value else f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    head = "".join(f'<th class="l">{html.escape(h)}</th>' if i == 0 else f"<th>{html.escape(h)}</th>"
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="l">{_fmt(c)}</td>' if i == 0 else f"<td>{_fmt(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG sits inside HTML


def _quality_rows(runs: dict[str, dict]) -> tuple[list[str], list[list]]:
    header = ["run", "arm", "tissue", "FD in-domain", "floor (real halves)", "KID ×10³", "precision", "recall",
              "detectability", "N gen"]
    rows = []
    for label, e in runs.items():
        q = e["quality"]["in_domain"]
        rows.append([label, e["conditioning"], e["tissue"], q["fd"], q["fd_floor_real_halves"], q["kid"] * 1e3,
                     q["precision"], q["recall"], e["detectability"]["accuracy"], q["n_generated"]])
    return header, rows


def _fidelity_rows(runs: dict[str, dict]) -> tuple[list[str], list[list]] | None:
    if not any("programs" in e["fidelity"] for e in runs.values()):
        return None
    short = {"nuclear_density": "density", "nuclear_size": "size", "airspace_fraction": "airspace",
             "eosin_intensity": "eosin"}
    header = ["run", "source"] + [f"held-out r {short[p]}" for p in PROGRAM_NAMES] + ["top-1", "top-5", "chance"]
    rows, ceilings = [], {}
    for label, e in runs.items():
        for source, key in (("generated", "programs"), ("real tiles (ceiling)", "programs_real_ceiling")):
            f = e["fidelity"].get(key)
            if not f:
                continue
            name = label
            if key == "programs_real_ceiling":  # one ceiling a tissue and evaluation folder, not one a run
                name = f"{e['tissue']} ({Path(e['_folder']).name})"
                if name in ceilings:
                    continue
                ceilings[name] = True
            r = f["retrieval"]["all"]
            rows.append([name, source, *[f["correlation"]["held_out"][p]["pearson"] for p in PROGRAM_NAMES],
                         r["top1"], r["top5"], r["chance_top1"]])
    return header, rows


def _fidelity_figure(runs: dict[str, dict]) -> str | None:
    """Held-out Pearson r per program, one group of bars a run, the real tiles' ceiling as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_programs = {label: e for label, e in runs.items() if "programs" in e["fidelity"]}
    if not with_programs:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    width = 0.8 / len(with_programs)
    x = range(len(PROGRAM_NAMES))
    for k, (label, e) in enumerate(with_programs.items()):
        values = [e["fidelity"]["programs"]["correlation"]["held_out"][p]["pearson"] for p in PROGRAM_NAMES]
        ax.bar([i + k * width for i in x], [0 if v != v else v for v in values], width, label=label)
    ceiling = next(iter(with_programs.values()))["fidelity"].get("programs_real_ceiling")
    if ceiling:
        ax.plot([i + 0.4 - width / 2 for i in x],
                [ceiling["correlation"]["held_out"][p]["pearson"] for p in PROGRAM_NAMES], "k_", markersize=30,
                label="real tiles (ceiling)")
    ax.axhline(0, color="#888", linewidth=0.8)
    ax.set_xticks([i + 0.4 - width / 2 for i in x], [p.replace("_", " ") for p in PROGRAM_NAMES])
    ax.set(ylabel="held-out Pearson r", ylim=(-1, 1), title="Does a tile follow its sample's programs?")
    ax.legend(fontsize=7)
    return _svg(fig)


def _curve_figure(folders: Sequence[Path]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [pd.read_csv(f / EPOCHS_FILE) for f in folders if (f / EPOCHS_FILE).exists()]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return None
    data = pd.concat(frames)
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for run, part in data.groupby("run"):
        ax.plot(part["epoch"], part["fd"], marker="o", label=run)
    ax.set(xlabel="epoch", ylabel="in-domain FD (log scale)", title="Epochs to quality", yscale="log")
    ax.legend(fontsize=8)
    return _svg(fig)


def _umap_figure(folders: Sequence[Path]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [pd.read_csv(f / UMAP_FILE) for f in folders if (f / UMAP_FILE).exists()]
    if not frames:
        return None
    fig, axes = plt.subplots(1, len(frames), figsize=(6 * len(frames), 4.5), squeeze=False)
    for ax, data, folder in zip(axes[0], frames, folders, strict=False):
        for (source, tissue), part in data.groupby(["source", "tissue"]):
            ax.scatter(part["x"], part["y"], s=6, alpha=0.6, label=f"{source} · {tissue}")
        ax.set(title=f"UMAP of in-domain features ({folder.name})", xticks=[], yticks=[])
        ax.legend(fontsize=7, markerscale=2)
    return _svg(fig)


def write_report(folders: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> Path:
    folders = [Path(f) for f in folders]
    runs = load_evaluations(folders)
    out = Path(out)
    if (out.parent / METRICS_FILE).exists() and out.parent.resolve() in {f.resolve() for f in folders}:
        raise ValueError(f"{out}: the report's metrics.json would overwrite the evaluation's "
                         f"{out.parent / METRICS_FILE}; write the report into another folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
             "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'; "
             "img-src data:\">",
             f"<title>RNA-GAN evaluation</title><style>{CSS}</style></head><body>",
             "<h1>RNA-GAN evaluation</h1>",
             f"<p class=note>{len(runs)} run(s) from {', '.join(html.escape(str(f)) for f in folders)}. "
             "FD and KID in the in-domain encoder's features (a slide classifier trained on real training tiles); "
             "the floor is the FD between two halves of the real held-out tiles. Detectability: cross-validated "
             "accuracy of a small CNN telling real from generated (0.5 = indistinguishable).</p>",
             "<h2>Image quality</h2>", _table(*_quality_rows(runs))]
    inception = [(label, e["quality"]["inception"]) for label, e in runs.items() if "inception" in e["quality"]]
    if inception:
        parts += ["<h2>FID (Inception-v3 pool features, pytorch-fid weights)</h2>",
                  _table(["run", "FID", "floor (real halves)", "KID ×10³", "precision", "recall", "N real", "N gen"],
                         [[lab, q["fd"], q["fd_floor_real_halves"], q["kid"] * 1e3, q["precision"], q["recall"],
                           q["n_real"], q["n_generated"]] for lab, q in inception])]
    else:
        parts.append("<p class=note>No FID: no Inception weights file was given to `rnagan evaluate`.</p>")
    fidelity = _fidelity_rows(runs)
    parts.append("<h2>Conditioning fidelity</h2>")
    if fidelity:
        parts.append(_table(*fidelity))
        figure = _fidelity_figure(runs)
        if figure:
            parts += ["<figure>", figure, "</figure>"]
    retrieval = [[label, e["fidelity"]["feature_retrieval"]["top1"], e["fidelity"]["feature_retrieval"]["top5"],
                  e["fidelity"]["feature_retrieval_ceiling"]["top1"], e["fidelity"]["feature_retrieval"]["chance_top1"]]
                 for label, e in runs.items()]
    parts.append(_table(["run", "feature retrieval top-1", "top-5", "real ceiling top-1", "chance"], retrieval))
    useful = [(label, e["_usefulness"]) for label, e in runs.items() if e.get("_usefulness")]
    parts.append("<h2>Usefulness (ResNet-18 tissue classifier)</h2>")
    rows = []
    for label, u in useful:
        if "skipped" in u:
            rows.append([label, u["skipped"], None, None, None])
        else:
            for direction in ("train_generated_test_real", "train_real_test_generated"):
                s = u[direction]
                rows.append([label, direction.replace("_", " "), s["accuracy"], s["f1"], s["auc"]])
    parts.append(_table(["run", "direction", "accuracy", "F1", "AUC"], rows))
    for title, figure in (("Epochs to quality", _curve_figure(folders)), ("UMAP", _umap_figure(folders))):
        if figure:
            parts += [f"<h2>{title}</h2><figure>", figure, "</figure>"]
    parts.append("</body></html>")
    with atomic_open(out, "w", encoding="utf-8") as handle:
        handle.write("\n".join(parts))
    write_json(out.with_name("metrics.json"), {"runs": {k: {n: v for n, v in e.items() if not n.startswith("_")}
                                                        for k, e in runs.items()},
                                               "folders": [str(f) for f in folders]})
    return out
