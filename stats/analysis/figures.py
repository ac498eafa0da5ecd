"""Server-side figures as SVG text (matplotlib, Agg; no JavaScript), each with a caption saying what it
shows and how many ratings or answers it rests on. They are drawn from the JSON result alone, so the page,
the exports and the command draw the same figures from the same numbers.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
from matplotlib import rcParams  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

rcParams["svg.hashsalt"] = "rnagan"  # stable element ids: the same result draws byte-identical SVG
rcParams["svg.fonttype"] = "none"  # text stays text: smaller files, searchable captions and labels

SOURCE_ORDER = ("real", "rnagan", "gan", "noise")
SOURCE_LABEL = {"real": "Real", "gan": "GAN", "rnagan": "RNA-GAN", "noise": "Noise"}
SOURCE_COLOUR = {"real": "#1b7837", "rnagan": "#2166ac", "gan": "#b2182b", "noise": "#777777"}


@dataclass(frozen=True)
class Drawn:
    name: str
    svg: str
    caption: str


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    return out.getvalue()


def _sources(present) -> list[str]:
    present = set(present)  # once: `present` may be a generator
    return [s for s in SOURCE_ORDER if s in present]


def figure6(result: dict) -> Drawn | None:
    """The paper's Figure 6: each rater's mean quality per source, and the paired mean differences."""
    rows = result.get("per_rater") or []
    if not rows:
        return None
    tissues = sorted({r["tissue"] for r in rows})
    figure = Figure(figsize=(4.2 * len(tissues) + 4.2, 3.6))
    axes = figure.subplots(1, len(tissues) + 1, squeeze=False)[0]
    for ax, tissue in zip(axes, tissues, strict=False):
        mine = [r for r in rows if r["tissue"] == tissue]
        sources = _sources(r["source"] for r in mine)
        for rater in sorted({r["rater"] for r in mine}):
            points = {r["source"]: r["mean_quality"] for r in mine if r["rater"] == rater}
            xs = [i for i, s in enumerate(sources) if s in points]
            ax.plot(xs, [points[sources[i]] for i in xs], color="#bbbbbb", lw=0.8, zorder=1)
        for i, source in enumerate(sources):
            values = [r["mean_quality"] for r in mine if r["source"] == source]
            ax.scatter([i] * len(values), values, s=18, color=SOURCE_COLOUR[source], zorder=2)
            ax.hlines(sum(values) / len(values), i - 0.25, i + 0.25, color="black", lw=2, zorder=3)
        ax.set_xticks(range(len(sources)), [SOURCE_LABEL[s] for s in sources])
        ax.set_ylim(0.8, 5.2)
        ax.set_ylabel("mean quality per rater (1–5)")
        ax.set_title(tissue)
    forest = axes[-1]
    records = [t for t in result.get("tests", []) if t["test"] == "paired t, one-sided" and t["effect"] is not None]
    for y, record in enumerate(records):
        low, high = record["ci95"] or (record["effect"], record["effect"])
        # BCa intervals of lumpy samples can sit beside the mean; an error bar cannot point backwards.
        forest.errorbar(record["effect"], y, xerr=[[max(0.0, record["effect"] - low)],
                                                   [max(0.0, high - record["effect"])]],
                        fmt="o", color="black", capsize=3)
    forest.axvline(0, color="#888888", lw=0.8, ls="--")
    forest.set_yticks(range(len(records)), [f"{r['tissue']}: {r['comparison']}" for r in records])
    forest.invert_yaxis()
    forest.set_xlabel("mean difference in quality, 95 % bootstrap CI")
    figure.tight_layout()
    n_ratings = result.get("first_presentations", 0)
    caption = (f"Left: each rater's mean quality score per tile source (grey lines join one rater; black bars are "
               f"the means over raters). Right: the per-rater mean differences the paired tests compare, with "
               f"95 % bootstrap intervals. {result.get('raters', 0)} raters, {n_ratings} first-presentation "
               f"ratings.")
    return Drawn("figure6_quality", _svg(figure), caption)


def accuracy_and_artifacts(result: dict) -> Drawn | None:
    summary = result.get("summary") or []
    if not summary:
        return None
    tissues = sorted({r["tissue"] for r in summary})
    figure = Figure(figsize=(8.4, 3.4))
    for ax, (key, label) in zip(figure.subplots(1, 2), (("tissue_accuracy", "tissue-of-origin accuracy"),
                                                       ("artifact_rate", "share of ratings reporting artifacts")),
                                strict=True):
        sources = _sources(r["source"] for r in summary)
        width = 0.8 / max(1, len(sources))
        for j, source in enumerate(sources):
            for i, tissue in enumerate(tissues):
                row = next((r for r in summary if r["tissue"] == tissue and r["source"] == source), None)
                if row is None:
                    continue
                low, high = row[f"{key}_wilson95"] or (row[f"{key}_pooled"],) * 2
                value = row[f"{key}_pooled"]
                ax.bar(i + (j - (len(sources) - 1) / 2) * width, value, width, color=SOURCE_COLOUR[source],
                       yerr=[[max(0.0, value - low)], [max(0.0, high - value)]], capsize=2,
                       label=SOURCE_LABEL[source] if i == 0 else None)
        ax.set_xticks(range(len(tissues)), tissues)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(label)
    figure.axes[0].legend(frameon=False, fontsize=8)
    figure.tight_layout()
    caption = ("Tissue-of-origin accuracy (left) and artifact rate (right) per tile source, pooled over raters, "
               f"with Wilson 95 % intervals. {result.get('first_presentations', 0)} first-presentation ratings "
               f"by {result.get('raters', 0)} raters.")
    return Drawn("accuracy_artifacts", _svg(figure), caption)


def game_roc(result: dict) -> Drawn | None:
    curve = (result.get("roc") or {}).get("curve")
    if not curve:
        return None
    figure = Figure(figsize=(3.8, 3.6))
    ax = figure.subplots()
    ax.plot(curve["fpr"], curve["tpr"], marker="o", color="#2166ac")
    ax.plot([0, 1], [0, 1], color="#888888", lw=0.8, ls="--")
    ax.set_xlabel("false alarm rate (real called synthetic)")
    ax.set_ylabel("hit rate (synthetic called synthetic)")
    ax.set_aspect("equal")
    figure.tight_layout()
    caption = (f"ROC of the crowd's verdict × confidence (four ordered responses), pooled over "
               f"{result['answers']} answers by {result['players']} players; AUC {result['roc']['auc']:.3f}.")
    return Drawn("game_roc", _svg(figure), caption)


def game_learning(result: dict) -> Drawn | None:
    rows = (result.get("learning") or {}).get("by_position") or []
    if not rows:
        return None
    figure = Figure(figsize=(5.2, 3.2))
    ax = figure.subplots()
    xs = [r["position"] for r in rows]
    ax.fill_between(xs, [r["wilson95"][0] for r in rows], [r["wilson95"][1] for r in rows], color="#c6dbef")
    ax.plot(xs, [r["accuracy"] for r in rows], marker="o", color="#2166ac")
    ax.axhline(0.5, color="#888888", lw=0.8, ls="--")
    ax.set_xlabel("round")
    ax.set_ylabel("share of right verdicts")
    ax.set_ylim(0, 1)
    figure.tight_layout()
    caption = (f"Accuracy by round with Wilson 95 % bands; the dashed line is chance. {result['answers']} answers "
               f"in {result['games']} games.")
    return Drawn("game_learning", _svg(figure), caption)


def study_figures(result: dict) -> list[Drawn]:
    return [drawn for drawn in (figure6(result), accuracy_and_artifacts(result)) if drawn is not None]


def game_figures(result: dict) -> list[Drawn]:
    return [drawn for drawn in (game_roc(result), game_learning(result)) if drawn is not None]
