"""Synthetic ratings and answers with known effects: the mixed model's recovery test, the benchmark and
the demo draw from here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PAPER_LIKE = {"real": 3.5, "rnagan": 3.0, "gan": 2.2}


def study_ratings(*, raters: int = 6, tiles_per_cell: int = 3, tissues=("brain", "lung"), means=None,
                  rater_sd: float = 0.4, tile_sd: float = 0.3, noise_sd: float = 0.6, anchors: int = 0,
                  repeats: int = 0, seed: int = 0, rounded: bool = True) -> pd.DataFrame:
    """Every rater rates every tile once (plus `repeats` hidden repeats); quality = source mean + rater +
    tile + noise, rounded and clipped to 1–5 unless `rounded` is False."""
    means = means or PAPER_LIKE
    rng = np.random.default_rng(seed)
    tiles = pd.DataFrame([{"tile": f"{tissue[:2]}-{source}-{k:04d}", "tissue": tissue, "source": source}
                          for tissue in tissues for source in means for k in range(tiles_per_cell)])
    tiles["effect"] = rng.normal(0, tile_sd, len(tiles))
    tiles["is_anchor"] = False
    tiles.loc[rng.permutation(len(tiles))[:anchors], "is_anchor"] = True
    rows = []
    other = {t: [o for o in tissues if o != t] or [t] for t in tissues}
    for r in range(raters):
        rater = f"R{r + 1:03d}"
        bias = rng.normal(0, rater_sd)
        order = rng.permutation(len(tiles))
        shown = list(order) + list(rng.choice(order, size=min(repeats, len(order)), replace=False))
        for position, index in enumerate(shown, start=1):
            tile = tiles.iloc[index]
            value = means[tile["source"]] + bias + tile["effect"] + rng.normal(0, noise_sd)
            wrong = tile["source"] == "gan" and rng.random() < 0.25
            rows.append({
                "rater": rater, "tile": tile["tile"], "source": tile["source"], "tissue": tile["tissue"],
                "tissue_answer": other[tile["tissue"]][0] if wrong else tile["tissue"],
                "quality": int(np.clip(np.rint(value), 1, 5)) if rounded else float(value),
                "artifacts": bool(rng.random() < {"real": 0.17, "rnagan": 0.56, "gan": 0.7}.get(tile["source"], 0.5)),
                "position": position, "is_repeat": position > len(order), "is_anchor": bool(tile["is_anchor"]),
                "seconds": float(rng.gamma(4, 3)), "active_seconds": float(rng.gamma(4, 2.5)),
                "answered_at": pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(minutes=r * 1000 + position),
                "revisions": int(rng.random() < 0.05),
            })
    return pd.DataFrame(rows)


def game_answers(*, games: int = 200, rounds: int = 20, tiles: int = 120, tissues=("lung", "colon"),
                 skill: float = 0.8, learning: float = 0.02, seed: int = 0) -> pd.DataFrame:
    """Players see independently drawn sources; the chance of a right verdict rises `learning` log-odds a round."""
    rng = np.random.default_rng(seed)
    sources = np.array(["real", "gan", "rnagan"])
    tile_source = sources[rng.integers(0, 3, tiles)]
    tile_tissue = np.array(tissues)[rng.integers(0, len(tissues), tiles)]
    n = games * rounds
    game = np.repeat(np.arange(games), rounds)
    position = np.tile(np.arange(1, rounds + 1), games)
    tile = rng.integers(0, tiles, n)
    logit = skill * np.where(tile_source[tile] == "rnagan", 0.5, 1.0) + learning * (position - 1) - 0.3
    correct = rng.random(n) < 1 / (1 + np.exp(-logit))
    synthetic = tile_source[tile] != "real"
    answer = np.where(correct == synthetic, "synthetic", "real")
    return pd.DataFrame({
        "player": pd.Series(np.char.add("p", (game // 2).astype(str))), "game": pd.Series(np.char.add("g", game.astype(str))),
        "tile": pd.Series(np.char.add("t", tile.astype(str))), "source": tile_source[tile], "tissue": tile_tissue[tile],
        "answer": answer, "confidence": np.where(rng.random(n) < 0.5 + 0.2 * correct, "sure", "unsure"),
        "correct": correct, "position": position,
        "answered_at": pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="s"),
    })
