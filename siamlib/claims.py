"""The paper's three claims about SIAM, checked against this study's ablation and learning curve.

The claims come from Pei et al., "Attended End-to-end Architecture for Age Estimation from
Facial Expression Videos", IEEE TIP 29 (2020):
    1. both the spatial and the temporal attention lower the error;
    2. the spatially-indexed attention beats other spatial attention mechanisms;
    3. the end-to-end model beats handcrafted features given sufficient training data. Each claim becomes one or
more comparisons of SIAM (the ablation variant `siam`, or the learning curve's SIAM) with an
alternative, on the same test videos.

Verdict of one comparison, from the MAE pooled over the tested videos and the MAE per fold:
    supported     SIAM's pooled MAE is lower, and lower in every tested fold
    contradicted  SIAM's pooled MAE is higher, and higher in every tested fold
    mixed         anything else (the folds disagree)
A claim is supported or contradicted when all of its comparisons are, and mixed otherwise; a
comparison whose variant did not run is "not measured", and the claim's verdict says how many
of its comparisons were measured. With two folds this is a weak test:
the report gives the numbers so that a reader can judge the size of each difference.

This module reads the predictions tables and learning-curve table only, so it imports nothing
else from the study.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

REFERENCE = "siam"
ABLATION_CLAIMS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Both attentions lower the error", (
        ("without spatial attention", "spatial_none"),
        ("mean over frames instead of temporal attention", "temporal_mean"),
        ("without either attention", "no_attention"),
    )),
    ("The spatially-indexed attention beats other spatial attention mechanisms", (
        ("one 1x1 convolution shared by all positions", "spatial_shared"),
        ("a content-free map per position", "spatial_positional"),
    )),
)
END_TO_END_CLAIM = "The end-to-end model beats handcrafted features given enough training data"
COLUMNS = ["claim", "comparison", "SIAM MAE", "other MAE", "difference", "folds SIAM better",
           "verdict"]


def _abs_errors(predictions: pd.DataFrame) -> pd.DataFrame:
    return predictions.assign(abs_error=(predictions["predicted_age"] - predictions["age"]).abs())


def _verdict(difference: float, better: int, folds: int) -> str:
    if difference < 0 and better == folds:
        return "supported"
    if difference > 0 and better == 0:
        return "contradicted"
    return "mixed"


def _combine(verdicts: Sequence[str]) -> str:
    measured = [verdict for verdict in verdicts if verdict != "not measured"]
    if not measured:
        return "not measured"
    combined = measured[0] if len(set(measured)) == 1 else "mixed"
    if len(measured) < len(verdicts):
        combined += (f" on the {len(measured)} of {len(verdicts)} comparisons measured "
                     "(the other variants did not run)")
    return combined


def compare_methods(
    errors: pd.DataFrame, reference: str, other: str, fold_column: str = "fold"
) -> dict[str, object]:
    """Compare two methods on the videos both predicted.

    Args:
        errors: Rows with method, video, the fold column and abs_error.
        reference: The method the claim is about.
        other: The alternative.
        fold_column: Column that names each row's test fold.

    Returns:
        The pooled MAE of both, their difference (reference minus other), the number of folds
        where the reference has the lower MAE, the number of folds, and the verdict.

    Raises:
        ValueError: If the two methods share no video.
    """
    pair = errors[errors["method"].isin([reference, other])]
    table = pair.pivot_table(index=["video", fold_column], columns="method", values="abs_error")
    table = table.dropna()
    if table.empty or reference not in table or other not in table:
        raise ValueError(f"methods {reference!r} and {other!r} share no predicted video")
    per_fold = table.groupby(level=fold_column).mean()
    difference = float(table[reference].mean() - table[other].mean())
    better = int((per_fold[reference] < per_fold[other]).sum())
    return {
        "SIAM MAE": round(float(table[reference].mean()), 2),
        "other MAE": round(float(table[other].mean()), 2),
        "difference": round(difference, 2),
        "folds SIAM better": f"{better} of {len(per_fold)}",
        "verdict": _verdict(difference, better, len(per_fold)),
    }


def ablation_claims(predictions: pd.DataFrame) -> pd.DataFrame:
    """Check claims 1 and 2 on the ablation's predictions.

    Args:
        predictions: Predictions of the ablation variants; the method column is the variant.

    Returns:
        One row per comparison and one summary row per claim (comparison "claim"), with the
        columns of `COLUMNS`.
    """
    errors = _abs_errors(predictions)
    methods = set(errors["method"])
    rows = []
    for claim, comparisons in ABLATION_CLAIMS:
        verdicts = []
        for description, variant in comparisons:
            row: dict[str, object] = {"claim": claim, "comparison": f"SIAM vs {description} "
                                      f"({variant})"}
            if REFERENCE in methods and variant in methods:
                row.update(compare_methods(errors, REFERENCE, variant))
            else:
                row["verdict"] = "not measured"
            verdicts.append(str(row["verdict"]))
            rows.append(row)
        rows.append({"claim": claim, "comparison": "claim", "verdict": _combine(verdicts)})
    return pd.DataFrame(rows, columns=COLUMNS)


def end_to_end_claim(curve: pd.DataFrame, siam: str = "SIAM") -> pd.DataFrame:
    """Check claim 3 on the learning curve: SIAM against the handcrafted baseline per share.

    Args:
        curve: The learning-curve table (`siamlib.experiments.learning_curve_table`): method,
            fraction, fold ("all" for the pooled row) and MAE.
        siam: SIAM's method name; the other method is the handcrafted baseline.

    Returns:
        One row per share of training subjects and a summary row (comparison "claim"). The
        claim's verdict is that of the largest share, followed by whether SIAM's MAE minus
        the baseline's shrinks or grows from the smallest to the largest share.

    Raises:
        ValueError: If the table does not hold SIAM and exactly one other method.
    """
    others = sorted(set(curve["method"]) - {siam})
    if siam not in set(curve["method"]) or len(others) != 1:
        raise ValueError(f"the learning curve must contain {siam!r} and one baseline, got "
                         f"{sorted(set(curve['method']))}")
    baseline = others[0]
    rows, differences = [], {}
    for fraction in sorted(curve["fraction"].unique()):
        at = curve[curve["fraction"] == fraction]
        pooled = at[at["fold"] == "all"].set_index("method")["MAE"]
        folds = at[at["fold"] != "all"].pivot(index="fold", columns="method", values="MAE")
        difference = float(pooled[siam] - pooled[baseline])
        better = int((folds[siam] < folds[baseline]).sum())
        differences[fraction] = difference
        rows.append({
            "claim": END_TO_END_CLAIM,
            "comparison": f"SIAM vs {baseline}, {fraction:.0%} of the training subjects",
            "SIAM MAE": round(float(pooled[siam]), 2),
            "other MAE": round(float(pooled[baseline]), 2),
            "difference": round(difference, 2),
            "folds SIAM better": f"{better} of {len(folds)}",
            "verdict": _verdict(difference, better, len(folds)),
        })
    fractions = sorted(differences)
    verdict = str(rows[-1]["verdict"])
    if len(fractions) > 1:
        trend = "shrinks" if differences[fractions[-1]] < differences[fractions[0]] else "grows"
        verdict += (f" at {fractions[-1]:.0%}; SIAM minus baseline {trend} from "
                    f"{differences[fractions[0]]:+.2f} to {differences[fractions[-1]]:+.2f} years "
                    f"as the training subjects grow from {fractions[0]:.0%}")
    rows.append({"claim": END_TO_END_CLAIM, "comparison": "claim", "verdict": verdict})
    return pd.DataFrame(rows, columns=COLUMNS)


def claims_markdown(table: pd.DataFrame, note: str) -> str:
    """Format the claims table as a Markdown page: one section per claim, verdict first.

    Args:
        table: Rows of `ablation_claims` and `end_to_end_claim`, concatenated.
        note: The dataset and budget the numbers come from, shown under the title.
    """
    lines = ["# The paper's claims on this benchmark", "", note, ""]
    for claim, rows in table.groupby("claim", sort=False):
        summary = rows[rows["comparison"] == "claim"]["verdict"]
        lines += [f"## {claim}", "", f"Verdict: **{summary.iloc[0]}**.", ""]
        detail = rows[rows["comparison"] != "claim"].drop(columns="claim")
        header = list(detail.columns)
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for values in detail.astype(object).where(detail.notna(), "").to_numpy().tolist():
            lines.append("| " + " | ".join(str(value) for value in values) + " |")
        lines.append("")
    return "\n".join(lines)
