"""Which expression each tile of a job is drawn from."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from generation.expressions import ExpressionError, plan_inputs, tile_seed
from generation.models import GenerationJob

GENES = ["ENSG1.1", "ENSG2.1", "ENSG3.1"]


def _loaded(genes=GENES):
    # Stands in for training.inference.generate.LoadedGenerator: plan_inputs reads only these attributes.
    return SimpleNamespace(vae=SimpleNamespace(genes=genes), expression_dir=None, tissue="Lung")


def _job(ref: str) -> GenerationJob:
    return GenerationJob(pk=1, requested=3, seed=5, expression_source="expression-file", expression_ref=ref)


def test_an_aligned_expression_file_row_feeds_every_tile_with_its_own_seed(tmp_path):
    table = pd.DataFrame([[0.5, -1.0, 2.0], [0.0, 0.1, 0.2]], index=["S1", "S2"], columns=GENES)
    table.to_csv(tmp_path / "aligned.csv")
    inputs = plan_inputs(_job(f"{tmp_path / 'aligned.csv'}#S1"), _loaded(), [0, 2])
    assert [i.index for i in inputs] == [0, 2]
    assert [i.seed for i in inputs] == [tile_seed(5, 0), tile_seed(5, 2)]
    assert all(np.array_equal(i.expression, np.array([0.5, -1.0, 2.0], dtype=np.float32)) for i in inputs)
    assert {(i.cohort, i.sample) for i in inputs} == {("aligned", "S1")}


def test_a_file_whose_genes_are_not_the_vaes_in_order_is_refused(tmp_path):
    table = pd.DataFrame([[0.5, -1.0, 2.0]], index=["S1"], columns=[GENES[1], GENES[0], GENES[2]])
    table.to_csv(tmp_path / "unaligned.csv")
    with pytest.raises(ExpressionError, match="not the VAE's 3 genes in order.*align-expression"):
        plan_inputs(_job(f"{tmp_path / 'unaligned.csv'}#S1"), _loaded(), [0])
