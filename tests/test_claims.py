"""Verdicts on the claims of siamlib.claims from hand-made predictions and learning curves."""

import pandas as pd
import pytest

from siamlib.claims import ablation_claims, claims_markdown, compare_methods, end_to_end_claim


def predictions(errors: dict[str, list[float]]) -> pd.DataFrame:
    """Four videos, two per fold; errors[method] gives each video's signed error."""
    rows = []
    for method, values in errors.items():
        for i, error in enumerate(values):
            rows.append({"method": method, "video": f"v{i}.mp4", "subject": i, "fold": i // 2,
                         "age": 30, "predicted_age": 30 + error, "gender": "female",
                         "smile_type": "posed"})
    return pd.DataFrame(rows)


def test_compare_counts_folds_and_verdicts():
    table = predictions({"siam": [1, 1, 1, 1], "other": [2, 2, 3, -3]})
    errors = table.assign(abs_error=(table["predicted_age"] - table["age"]).abs())
    result = compare_methods(errors, "siam", "other")
    assert result["SIAM MAE"] == 1.0
    assert result["other MAE"] == 2.5
    assert result["difference"] == -1.5
    assert result["folds SIAM better"] == "2 of 2"
    assert result["verdict"] == "supported"
    assert compare_methods(errors, "other", "siam")["verdict"] == "contradicted"


def test_mixed_when_folds_disagree():
    table = predictions({"siam": [1, 1, 4, 4], "other": [2, 2, 3, 3]})
    errors = table.assign(abs_error=(table["predicted_age"] - table["age"]).abs())
    assert compare_methods(errors, "siam", "other")["verdict"] == "mixed"


def test_ablation_claims_verdicts_and_missing_variants():
    table = predictions({
        "siam": [1, 1, 1, 1], "spatial_none": [2, 2, 2, 2], "temporal_mean": [3, 3, 3, 3],
        "no_attention": [2, 2, 2, 2], "spatial_shared": [0, 0, 0, 0],
    })
    claims = ablation_claims(table)
    summary = claims[claims["comparison"] == "claim"].set_index("claim")["verdict"]
    assert summary["Both attentions lower the error"] == "supported"
    # Beaten by the shared attention, and the positional variant did not run.
    spatial = summary["The spatially-indexed attention beats other spatial attention mechanisms"]
    assert spatial.startswith("contradicted on the 1 of 2 comparisons measured")
    positional = claims[claims["comparison"].str.contains("spatial_positional")]
    assert positional["verdict"].item() == "not measured"


def test_end_to_end_claim_reports_trend():
    rows = []
    for fraction, siam, svr in ((0.5, 9.0, 6.0), (1.0, 7.0, 6.5)):
        for fold, shift in (("0", -0.1), ("1", 0.1), ("all", 0.0)):
            rows.append({"method": "SIAM", "fraction": fraction, "fold": fold, "MAE": siam + shift})
            rows.append({"method": "SVR (both)", "fraction": fraction, "fold": fold, "MAE": svr})
    claim = end_to_end_claim(pd.DataFrame(rows))
    verdict = claim[claim["comparison"] == "claim"]["verdict"].item()
    assert verdict.startswith("contradicted at 100%")
    assert "shrinks from +3.00 to +0.50" in verdict
    assert len(claim) == 3
    with pytest.raises(ValueError, match="one baseline"):
        end_to_end_claim(pd.DataFrame(rows).query("method == 'SIAM'"))


def test_markdown_has_one_section_per_claim():
    table = ablation_claims(predictions({"siam": [1, 1, 1, 1], "spatial_none": [2, 2, 2, 2]}))
    text = claims_markdown(table, "note")
    assert text.count("## ") == 2
    assert "Verdict: **supported on the 1 of 3 comparisons measured" in text
    assert "| SIAM vs without spatial attention (spatial_none) | 1.0 | 2.0 |" in text
