"""What the page, the HTML report and the exports show of a study result: figures and agreement rows."""

from __future__ import annotations

from stats.analysis import figures


def study_payload(result: dict) -> dict:
    drawn = [{"name": d.name, "svg": d.svg, "caption": d.caption} for d in figures.study_figures(result)]
    return {"result": result, "figures": drawn}


def agreement_rows(result: dict) -> list[tuple[str, dict]]:
    a, retest = result["agreement"], result["test_retest"]
    return [
        ("Fleiss' κ, tissue answers", a["fleiss_kappa_tissue"]),
        ("Fleiss' κ, artifacts", a["fleiss_kappa_artifacts"]),
        ("Krippendorff's α (ordinal), quality", a["krippendorff_alpha_quality"]),
        ("ICC(2,1), quality (Shrout & Fleiss 1979)", a["icc_2_1_quality"]),
        ("Test–retest weighted κ (quadratic), quality", retest["quality_weighted_kappa"]),
        ("Test–retest κ, tissue", retest["tissue_kappa"]),
        ("Test–retest κ, artifacts", retest["artifacts_kappa"]),
    ]
