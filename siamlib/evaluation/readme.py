"""reports/README.md: the one page a reader opens first, built from the stages' outputs.

The page shows the overall table with intervals and paired tests, one table per grouping
(age group, gender, smile type, gender x age group), the comparison with the literature, the
figures, the ablation and the paper's claims, and links to the rendered notebooks. It is
written by the ``report`` stage; nothing in it is typed by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from siamlib.tables import markdown_table

GROUPING_TITLES = {
    "age_group": "age group",
    "gender": "gender",
    "smile_type": "smile type",
    "gender_age_group": "gender × age group",
}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_interval(estimate: float, low: float, high: float, decimals: int = 2) -> str:
    """Format an estimate and its interval as ``"4.56 [3.78, 5.52]"``, or the estimate alone
    where the interval is undefined."""
    if _missing(estimate):
        return "n/a"
    text = f"{estimate:.{decimals}f}"
    if not (_missing(low) or _missing(high)):
        text += f" [{low:.{decimals}f}, {high:.{decimals}f}]"
    return text


def format_p(p_value: float) -> str:
    """Return a p-value as ``"0.032"``, ``"<0.001"`` or ``"n/a"``."""
    if _missing(p_value):
        return "n/a"
    return "<0.001" if p_value < 0.001 else f"{p_value:.3f}"


def overall_frame(overall: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Return the overall table as shown: one row per method, best MAE first.

    Args:
        overall: The ``overall`` table of :func:`siamlib.evaluation.summary.evaluate` (or
            reports/tables/overall.csv).
        reference: The method the others are compared with.
    """
    rows = []
    for row in overall.sort_values(["mae", "method"]).to_dict("records"):
        compared = row["method"] != reference and not _missing(row["difference"])
        rows.append({
            "method": row["method"],
            "MAE": format_interval(row["mae"], row["mae_low"], row["mae_high"]),
            "RMSE": format_interval(row["rmse"], row["rmse_low"], row["rmse_high"]),
            "Pearson r": format_interval(row["pearson_r"], row["pearson_r_low"], row["pearson_r_high"]),
            "CS(5)": f"{100 * row['cs_5']:.1f}%",
            "CS(10)": f"{100 * row['cs_10']:.1f}%",
            "SD over folds": f"{row['mae_sd_folds']:.2f}",
            f"{reference} − method": format_interval(row["difference"], row["difference_low"],
                                                     row["difference_high"]) if compared else "",
            "p": format_p(row["p_value"]) if compared else "",
            "p (Holm)": format_p(row["p_holm"]) if compared else "",
            "effect r": f"{row['effect_size']:.2f}" if compared and not _missing(row["effect_size"]) else "",
            "subjects": int(row["subjects"]),
            "videos": int(row["videos"]),
        })
    return pd.DataFrame(rows)


def group_frame(groups: pd.DataFrame, grouping: str, reference: str) -> pd.DataFrame:
    """Return one grouping as shown: a row per group, a column per method.

    Each cell is the MAE with its interval; the other methods' cells add the p-value of the
    paired test against ``reference`` in that group. Groups with few subjects are marked †.
    """
    cells = groups[groups["grouping"] == grouping]
    methods = sorted(cells["method"].unique(), key=lambda name: (name != reference, name))
    rows = []
    for group in dict.fromkeys(cells["group"]):
        in_group = cells[cells["group"] == group].set_index("method")
        few = bool(in_group["few_subjects"].astype(bool).all())
        row = {
            GROUPING_TITLES.get(grouping, grouping): f"{group} †" if few else str(group),
            "subjects": int(in_group["subjects"].max()),
            "videos": int(in_group["videos"].max()),
        }
        for method in methods:
            if method not in in_group.index:
                row[method] = ""
                continue
            cell = in_group.loc[method]
            text = format_interval(cell["mae"], cell["mae_low"], cell["mae_high"])
            if method != reference and not _missing(cell["p_value"]):
                text += f", p {format_p(cell['p_value'])}"
            row[method] = text
        rows.append(row)
    return pd.DataFrame(rows)


def _figure(path: str, caption: str) -> str:
    return f"![{caption}]({path})"


def _demote(markdown: str) -> str:
    """Drop a document's title line and push its other headings one level down."""
    lines = markdown.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join("#" + line if line.startswith("#") else line for line in lines).strip()


def build_readme(
    *,
    dataset_label: str,
    synthetic: bool,
    overall: pd.DataFrame,
    groups: pd.DataFrame,
    literature: pd.DataFrame,
    reference: str,
    num_resamples: int,
    confidence: float,
    min_subjects: int,
    ablation_markdown: str,
    claims_markdown: str,
    notebook_pages: Sequence[str],
    faithfulness: pd.DataFrame | None = None,
) -> str:
    """Return the Markdown of reports/README.md.

    Args:
        dataset_label: Label of the dataset the results come from.
        synthetic: Whether that dataset is the synthetic benchmark (adds a warning).
        overall, groups: reports/tables/overall.csv and groups.csv.
        literature: :func:`siamlib.evaluation.literature.literature_table`.
        reference: The method the others are compared with (SIAM).
        num_resamples, confidence, min_subjects: The evaluation settings, stated on the page.
        ablation_markdown, claims_markdown: reports/ablation.md and reports/claims.md.
        notebook_pages: Paths of the rendered notebooks, relative to reports/.
        faithfulness: Attention-faithfulness scores (rows: scores, columns mean, sd, n), or
            None where the dataset has no planted ground truth.
    """
    level = f"{confidence:.0%}"
    lines = [f"# Results: age from smile videos — {dataset_label}", ""]
    if synthetic:
        lines += [
            "> **These numbers come from the synthetic benchmark shipped with this repository, "
            "not from the UvA-NEMO Smile Database.** They show that the pipeline works and how "
            "the methods rank on planted cues; they are not comparable with published UvA-NEMO "
            "results.", "",
        ]
    lines += [
        "Generated by `dvc repro` (stage `report`, notebooks/11_report.ipynb) from the other "
        "stages' outputs; edits are overwritten. MAE in years, pooled over the test videos of all "
        f"folds. Brackets: {level} intervals from {num_resamples} bootstrap resamples of subjects "
        f"(a subject's clips are not independent). `{reference} − method`: difference in MAE "
        f"on the videos both predicted, negative when {reference} is better. p: two-sided "
        f"Wilcoxon signed-rank test on per-subject mean absolute errors, {reference} against "
        "the method; p (Holm): adjusted over the methods in the table; effect r: matched-pairs "
        f"rank-biserial correlation (negative when {reference}'s errors are smaller). CS(θ): "
        f"share of videos with an absolute error of at most θ years. † marks groups with fewer "
        f"than {min_subjects} subjects, whose intervals are wide and tests weak; per-group "
        "p-values are not adjusted.", "",
        "## Overall", "",
        markdown_table(overall_frame(overall, reference)), "",
        _figure("figures/cumulative_score.png", "Cumulative score"), "",
    ]
    figures = {"age_group": "mae_by_age_group.png", "gender": "mae_by_gender.png",
               "smile_type": "mae_by_smile_type.png",
               "gender_age_group": "mae_by_gender_age_group.png"}
    for grouping, title in GROUPING_TITLES.items():
        if not (groups["grouping"] == grouping).any():
            continue
        lines += [f"## By {title}", "", markdown_table(group_frame(groups, grouping, reference)), "",
                  _figure(f"figures/{figures[grouping]}", f"MAE by {title}"), ""]
    lines += [
        "## Compared with the literature", "",
        "Published rows are on UvA-NEMO; this study's rows name the dataset they were measured on.", "",
        markdown_table(literature), "",
        "## Predictions", "",
        _figure("figures/predicted_vs_true.png", "Predicted against true age"), "",
        _figure("figures/error_vs_age.png", "Error against age"), "",
        "## SIAM's attention", "",
        _figure("figures/attention_by_age_group.png", "Spatial attention per age group"), "",
        _figure("figures/temporal_attention_gallery.png", "Temporal attention of typical videos"), "",
    ]
    if faithfulness is not None and not faithfulness.empty:
        lines += [
            "Attention against the synthetic benchmark's planted cues (1.0 is chance for the "
            "spatial scores and the apex ratio, 0 for the temporal correlation; see "
            "notebooks/06_evaluate.ipynb):", "",
            markdown_table(faithfulness.reset_index(names="score")), "",
            _figure("figures/attention_faithfulness_face.png", "Attention over the planted regions"), "",
        ]
    lines += [
        "## Ablation", "", _demote(ablation_markdown), "",
        _figure("figures/ablation_mae.png", "Ablation"), "",
        "## Learning curve", "", _figure("figures/learning_curve.png", "Learning curve"), "",
        "## The paper's claims", "", _demote(claims_markdown), "",
        "## Notebooks", "",
        "Every stage's executed notebook, rendered (the `.ipynb` files are in notebooks/):", "",
    ]
    lines += [f"- [{page}]({page})" for page in notebook_pages]
    return "\n".join(lines).rstrip() + "\n"
