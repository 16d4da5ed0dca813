"""reports/README.md and the literature table: formatting, dataset labels, links."""

import re

import pandas as pd
import pytest

from siamlib.evaluation.literature import PUBLISHED, UVANEMO, literature_table
from siamlib.evaluation.readme import (
    build_readme,
    format_interval,
    format_p,
    group_frame,
    overall_frame,
)
from siamlib.evaluation.statistics import BootstrapSettings
from siamlib.evaluation.summary import evaluate, metrics_by_method
from test_summary import GROUPS, make_predictions

LABEL = "synthetic benchmark, not UvA-NEMO"


def test_format_interval_and_p():
    assert format_interval(4.5612, 3.781, 5.519) == "4.56 [3.78, 5.52]"
    assert format_interval(4.5, float("nan"), 5.0) == "4.50"
    assert format_interval(float("nan"), 1.0, 2.0) == "n/a"
    assert format_p(0.0321) == "0.032"
    assert format_p(0.0004) == "<0.001"
    assert format_p(None) == "n/a"


@pytest.fixture(scope="module")
def result():
    return evaluate(make_predictions(), GROUPS, BootstrapSettings(num_resamples=100), min_subjects=4)


def test_overall_frame_leaves_reference_comparison_blank(result):
    frame = overall_frame(result.overall, "SIAM").set_index("method")
    assert list(frame.index) == ["SIAM", "C", "B"]
    assert frame.loc["SIAM", "p"] == ""
    assert frame.loc["SIAM", "SIAM − method"] == ""
    assert frame.loc["B", "SIAM − method"].startswith("-2.00")
    assert frame.loc["B", "MAE"] == "3.00 [3.00, 3.00]"
    assert frame.loc["B", "effect r"] == "-1.00"


def test_group_frame_marks_small_groups_and_gives_p(result):
    frame = group_frame(result.groups, "age_group", "SIAM")
    assert list(frame.columns) == ["age group", "subjects", "videos", "SIAM", "B", "C"]
    assert list(frame["age group"]) == ["8-9 †", "10-19 †", "20+"]
    assert ", p " not in frame.loc[0, "SIAM"]
    assert re.fullmatch(r"3\.00 \[3\.00, 3\.00\], p [0-9.<]+", frame.loc[0, "B"])


def test_literature_rows_name_their_dataset(result):
    table = literature_table(metrics_by_method(result), LABEL)
    published = table.iloc[: len(PUBLISHED)]
    assert (published["dataset"] == UVANEMO).all()
    ours = table.iloc[len(PUBLISHED):]
    assert list(ours["result"]) == ["SIAM (this study)"]  # the other two methods did not run
    assert (ours["dataset"] == LABEL).all()
    assert ours["MAE (years)"].iloc[0] == "1.00 [1.00, 1.00]"


def readme(result, synthetic: bool) -> str:
    return build_readme(
        dataset_label=LABEL if synthetic else UVANEMO,
        synthetic=synthetic,
        overall=result.overall,
        groups=result.groups,
        literature=literature_table(metrics_by_method(result), LABEL),
        reference="SIAM",
        num_resamples=100,
        confidence=0.95,
        min_subjects=4,
        ablation_markdown="# SIAM ablation\n\nnote\n\n| variant |\n|---|\n| siam |\n",
        claims_markdown="# Claims\n\n## First claim\n\nVerdict: **mixed**.\n",
        notebook_pages=["html/06_evaluate.html", "html/baselines/svr.html"],
        faithfulness=pd.DataFrame({"mean": [1.2], "sd": [0.1], "n": [10]}, index=["spatial_planted"]),
    )


def test_readme_has_tables_figures_and_warning(result):
    text = readme(result, synthetic=True)
    assert text.startswith(f"# Results: age from smile videos — {LABEL}")
    assert "not from the UvA-NEMO Smile Database" in text
    for title in ("## Overall", "## By age group", "## By gender", "## By smile type",
                  "## By gender × age group", "## Compared with the literature", "## Ablation",
                  "## The paper's claims", "## Notebooks"):
        assert title in text
    assert "### First claim" in text
    assert "# Claims" not in text  # headings pushed down
    assert "100 bootstrap resamples of subjects" in text
    assert "fewer than 4 subjects" in text
    assert "| 8-9 † |" in text
    assert "- [html/baselines/svr.html](html/baselines/svr.html)" in text
    figures = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", text)
    assert "figures/mae_by_gender_age_group.png" in figures
    assert "figures/attention_faithfulness_face.png" in figures
    assert len(figures) == len(set(figures))


def test_readme_on_uvanemo_has_no_synthetic_warning(result):
    text = readme(result, synthetic=False)
    assert "synthetic benchmark shipped" not in text
    assert text.startswith(f"# Results: age from smile videos — {UVANEMO}")
