"""Morphometry reads the programs back from drawn tissue: each measurement rises with its program and
the baselines of lung and brain are told apart."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from training.synthetic.histology import PROGRAM_NAMES, render_slide, render_tile, tissue_profile
from training.synthetic.morphometry import (
    measure_programs,
    nearest_tissue,
    stain_concentrations,
    tissue_region,
)

LUNG, BRAIN = "Lung", "Brain - Cortex"

# Each program swept across a wide range while the others stay at the tissue's baseline.
SWEEPS = {
    (LUNG, "nuclear_density"): [8, 11, 16, 22, 31, 44],
    (LUNG, "nuclear_size"): [4.5, 5.5, 6.5, 7.5, 8.5, 9.5],
    (LUNG, "airspace_fraction"): [0.45, 0.53, 0.61, 0.69, 0.77, 0.85],
    (LUNG, "eosin_intensity"): [0.5, 0.7, 0.9, 1.1, 1.3, 1.5],
    (BRAIN, "nuclear_density"): [5, 7, 10, 14, 20, 28],
    (BRAIN, "nuclear_size"): [4, 5, 6, 7, 8, 9],
    (BRAIN, "airspace_fraction"): [0.0, 0.03, 0.06, 0.09, 0.12, 0.15],
    (BRAIN, "eosin_intensity"): [0.4, 0.55, 0.7, 0.85, 1.0, 1.15],
}


def baseline(tissue: str) -> dict[str, float]:
    return dict(tissue_profile(tissue).mean)


@pytest.mark.parametrize(("tissue", "program"), list(SWEEPS), ids=[f"{t}-{p}" for t, p in SWEEPS])
def test_each_program_is_recovered_from_rendered_tiles(tissue, program):
    values = SWEEPS[(tissue, program)]
    measured = []
    for index, value in enumerate(values):
        programs = baseline(tissue) | {program: value}
        measured.append(measure_programs(render_tile(tissue, programs, size=512, seed=100 + index))[program])
    rho = spearmanr(values, measured).statistic
    assert rho > 0.8, f"{tissue} {program}: drawn {values}, measured {np.round(measured, 3).tolist()}"


@pytest.mark.parametrize("tissue", [LUNG, BRAIN])
def test_baseline_measurements_are_close_to_the_drawn_values(tissue):
    truth = baseline(tissue)
    measured = measure_programs(render_tile(tissue, truth, size=768, seed=7))
    assert measured["airspace_fraction"] == pytest.approx(truth["airspace_fraction"], abs=0.03)
    assert measured["eosin_intensity"] == pytest.approx(truth["eosin_intensity"], rel=0.1)
    assert measured["nuclear_size"] == pytest.approx(truth["nuclear_size"], rel=0.15)
    assert measured["nuclear_density"] == pytest.approx(truth["nuclear_density"], rel=0.3)
    assert 0 < measured["nuclear_area_fraction"] < 0.3
    assert measured["nuclei"] > 20


def test_lung_and_brain_baselines_are_told_apart():
    for seed in range(3):
        lung = measure_programs(render_tile(LUNG, baseline(LUNG), size=384, seed=seed))
        brain = measure_programs(render_tile(BRAIN, baseline(BRAIN), size=384, seed=seed))
        assert lung["airspace_fraction"] > 0.4 > 0.15 > brain["airspace_fraction"]
        assert nearest_tissue(lung, [LUNG, BRAIN]) == LUNG
        assert nearest_tissue(brain, [LUNG, BRAIN]) == BRAIN


def test_stain_concentrations_separate_glass_stroma_and_nuclei():
    white = np.full((4, 4, 3), 247, dtype=np.uint8)
    hema, eosin = stain_concentrations(white)
    assert hema.max() < 0.02 and eosin.max() < 0.02
    tile = render_tile(BRAIN, baseline(BRAIN) | {"airspace_fraction": 0.0}, size=256, seed=3)
    hema, eosin = stain_concentrations(tile)
    nuclei = hema > 0.5
    assert 0.005 < nuclei.mean() < 0.2  # some, not all, pixels are nuclei
    assert np.median(eosin[~nuclei]) > 0.2  # the neuropil around them is pink
    assert np.median(hema[~nuclei]) < 0.25


def test_tissue_region_excludes_the_glass_and_measures_airspace_inside_it():
    programs = baseline(LUNG)
    slide = render_slide(LUNG, programs, size=1024, seed=5)
    region = tissue_region(slide)
    border = np.concatenate([region[:20].ravel(), region[-20:].ravel(), region[:, :20].ravel(), region[:, -20:].ravel()])
    assert not border.any()
    assert 0.2 < region.mean() < 0.8
    measured = measure_programs(slide, region=region)
    assert measured["airspace_fraction"] == pytest.approx(programs["airspace_fraction"], abs=0.08)


def test_measure_programs_reports_every_program_and_rejects_bad_input():
    tile = render_tile(LUNG, baseline(LUNG), size=128, seed=1)
    assert set(PROGRAM_NAMES) <= set(measure_programs(tile))
    with pytest.raises(ValueError, match="uint8"):
        measure_programs(tile.astype(np.float32))
    with pytest.raises(ValueError, match="region"):
        measure_programs(tile, region=np.ones((10, 10), dtype=bool))
    empty = measure_programs(np.full((64, 64, 3), 250, dtype=np.uint8))
    assert empty["airspace_fraction"] == 1.0 and np.isnan(empty["nuclear_size"])
