"""`rnagan evaluate` end to end on a tiny cohort (real tile store, run folders, programs), `rnagan report`
rendered offline in Chromium, and the command's refusal of a wrong Inception weights file."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from tests.training.inference.test_generate import GENES, make_run, write_prepared, write_vae_run
from tests.training.metrics.conftest import downscale
from training.cli.rnagan import main
from training.metrics.detectability import DetectConfig
from training.metrics.evaluate import EvalConfig, evaluate
from training.metrics.features import EncoderConfig
from training.metrics.report import write_report
from training.synthetic.histology import PROGRAM_NAMES, render_tile, tissue_profile

SPLITS = ["train"] * 5 + ["test"] * 3


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """8 lung samples with drawn programs, 4 tiles a slide in a real tile store, a VAE, a prepared folder."""
    from PIL import Image

    from training.data.tile_store import TileStoreWriter, dumps, tile_key

    root = tmp_path_factory.mktemp("cohort")
    rng = np.random.default_rng(3)
    profile = tissue_profile("Lung")
    ids = [f"GTEX-S{i}-0726-SM-1" for i in range(8)]
    slides = [s.rsplit("-SM", 1)[0] for s in ids]
    programs = []
    with TileStoreWriter(root / "tiles.lmdb") as writer:
        for i, slide in enumerate(slides):
            drawn = {p: profile.mean[p] + profile.sd[p] * rng.uniform(-1.5, 1.5) for p in PROGRAM_NAMES}
            programs.append({"sample_id": ids[i], "slide_id": slide, "tissue": "Lung", **drawn})
            writer.begin_slide(slide, {"slide_id": slide, "tissue": "Lung", "count": 0})
            entries = []
            for k in range(4):
                buffer = io.BytesIO()
                Image.fromarray(downscale(render_tile("Lung", drawn, size=256, seed=10 * i + k), 64)).save(
                    buffer, format="JPEG", quality=90)
                key = tile_key(slide, 256 * k, 0)
                entries.append((key, buffer.getvalue(), dumps({"slide_id": slide, "x": 256 * k, "y": 0})))
            writer.put_tiles(entries)
            writer.put_record(slide, {"slide_id": slide, "tissue": "Lung", "count": 4, "status": "complete"})
    pd.DataFrame(programs).to_csv(root / "programs.csv", index=False)
    prepared = write_prepared(root / "prepared", {"sample_id": ids, "slide_id": slides, "tissue": ["Lung"] * 8,
                                                  "split": SPLITS})
    vae = write_vae_run(root / "vae")
    runs = [make_run(root / "lung-gan"),
            make_run(root / "lung-rnagan", conditioning="rna", vae_run=str(vae), expression_dir=str(prepared))]
    return root, runs


def tiny_eval() -> EvalConfig:
    return EvalConfig(tiles_per_sample=2, real_per_slide=4, generated=12, kid_subsets=5, kid_subset_size=10,
                      curve_tiles=4, umap_tiles=0, encoder=EncoderConfig(epochs=1, min_steps=5, width=8),
                      detect=DetectConfig(folds=2, epochs=1, min_steps=4, width=4))


@pytest.fixture(scope="module")
def evaluated(cohort, tmp_path_factory):
    root, runs = cohort
    out = tmp_path_factory.mktemp("eval")
    metrics = evaluate(runs, tiles=root / "tiles.lmdb", expression=root / "prepared", out=out,
                       programs=str(root / "programs.csv"), config=tiny_eval(), progress=False, log=lambda _: None)
    return out, metrics


def test_evaluate_scores_every_run_and_states_its_sample_sizes(evaluated):
    out, metrics = evaluated
    assert set(metrics["runs"]) == {"lung-gan", "lung-rnagan"}
    for entry in metrics["runs"].values():
        quality = entry["quality"]["in_domain"]
        assert quality["fd"] >= 0 and quality["n_real"] == 12 and quality["n_generated"] == 12  # 3 test slides
        assert 0 <= entry["detectability"]["accuracy"] <= 1
        ceiling = entry["fidelity"]["programs_real_ceiling"]
        assert ceiling["samples"] == 8 and ceiling["tiles"] == 16
        assert "inception" not in entry["quality"]  # no weights file, no FID
    assert metrics["usefulness"]["none"]["skipped"].startswith("runs of one tissue")
    assert json.loads((out / "metrics.json").read_text())["runs"].keys() == metrics["runs"].keys()
    assert not (out / "umap.csv").exists()  # turned off here: numba compiles UMAP for a minute


def test_the_report_renders_offline_in_chromium(evaluated, tmp_path, page):
    out, _ = evaluated
    report = write_report([out], tmp_path / "report" / "report.html")
    assert (tmp_path / "report" / "metrics.json").exists()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())
    assert page.title() == "RNA-GAN evaluation"
    assert page.locator("table").count() >= 3
    assert page.locator("svg").count() >= 1  # the fidelity figure, inline
    assert "lung-rnagan" in page.inner_text("body")
    assert [u for u in requests if not u.startswith("file:")] == []


def test_the_report_will_not_overwrite_an_evaluation(evaluated):
    out, _ = evaluated
    with pytest.raises(ValueError, match="would overwrite"):
        write_report([out], out / "report.html")


def test_evaluate_refuses_a_wrong_inception_weights_file_before_any_work(cohort, tmp_path, capsys):
    root, runs = cohort
    junk = tmp_path / "inception.pth"
    junk.write_bytes(b"\x00" * 64)
    code = main(["evaluate", "--runs", *map(str, runs), "--tiles", str(root / "tiles.lmdb"), "--expression",
                 str(root / "prepared"), "--inception-weights", str(junk), "--out", str(tmp_path / "eval")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--inception-weights" in err and "not a PyTorch state dict" in err and "Traceback" not in err
    assert not (tmp_path / "eval").exists()


def test_evaluate_names_a_folder_that_is_not_a_run(cohort, tmp_path, capsys):
    root, _ = cohort
    code = main(["evaluate", "--runs", str(tmp_path), "--tiles", str(root / "tiles.lmdb"), "--expression",
                 str(root / "prepared"), "--out", str(tmp_path / "eval")])
    assert code == 2 and "not a train-gan run folder" in capsys.readouterr().err


assert len(GENES) == 10  # the helpers' expression width, used by the VAE above


def test_fast_lightens_the_learned_parts_and_scores_fidelity_as_in_full(cohort, tmp_path, monkeypatch):
    root, runs = cohort
    seen = []
    monkeypatch.setattr("training.metrics.evaluate.evaluate", lambda *a, config, **k: seen.append(config))
    common = ["evaluate", "--runs", *map(str, runs), "--tiles", str(root / "tiles.lmdb"),
              "--expression", str(root / "prepared"), "--out", str(tmp_path / "eval")]
    assert main([*common, "--fast", "--tiles-per-sample", "4"]) == 0
    assert main([*common, "--fast", "--folds", "4", "--generated", "50"]) == 0
    assert main(common) == 0
    fast, fast_custom, full = seen
    assert fast.encoder.min_steps < full.encoder.min_steps and fast.detect.epochs < full.detect.epochs
    assert (fast.detect.folds, fast.generated, fast.tiles_per_sample) == (3, 300, 4)
    assert (fast_custom.detect.folds, fast_custom.generated) == (4, 50)
    assert (full.detect.folds, full.generated, full.tiles_per_sample) == (5, 1000, 16)
