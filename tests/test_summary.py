"""The evaluation tables: counts, group order, small-cell marks, comparisons with SIAM."""

import json

import numpy as np
import pandas as pd
import pytest

from siamlib.evaluation.metrics import parse_age_groups
from siamlib.evaluation.statistics import BootstrapSettings
from siamlib.evaluation.summary import (
    GROUPINGS,
    TABLE_FILES,
    evaluate,
    metrics_by_method,
    write_tables,
)

GROUPS = parse_age_groups([8, 10, 20])
FAST = BootstrapSettings(num_resamples=200)


def make_predictions() -> pd.DataFrame:
    """12 subjects with 2 videos each; SIAM errs by 1 year, B by 3, C by 1 except one subject."""
    rows = []
    for subject in range(12):
        age = (8, 15, 25, 45)[subject % 4]
        gender = ("female", "male")[subject % 2]
        for take in range(2):
            video = f"{subject:03d}_{take}"
            smile = ("posed", "spontaneous")[take]
            for method, error in (("SIAM", 1.0), ("B", -3.0), ("C", 9.0 if subject == 0 else 1.0)):
                rows.append({"method": method, "video": video, "subject": subject, "fold": subject % 3,
                             "age": age, "predicted_age": age + error, "gender": gender,
                             "smile_type": smile})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def result():
    return evaluate(make_predictions(), GROUPS, FAST)


def test_overall_table_values_and_comparisons(result):
    overall = result.overall.set_index("method")
    assert list(result.overall["method"]) == ["SIAM", "C", "B"]  # best MAE first
    assert overall.loc["SIAM", "mae"] == 1.0
    assert overall.loc["B", "mae"] == 3.0
    assert overall.loc["C", "mae"] == pytest.approx((2 * 9 + 22 * 1) / 24)
    assert (overall["videos"] == 24).all()
    assert (overall["subjects"] == 12).all()
    # Every subject does better with SIAM than with B: SIAM - B is -2, effect -1, small p.
    assert overall.loc["B", "difference"] == pytest.approx(-2.0)
    assert overall.loc["B", "effect_size"] == -1.0
    # Twelve tied differences of one sign: all 2^12 sign flips are enumerated, and only the
    # two all-same-sign flips are as extreme, so p = 2 / 4096.
    assert overall.loc["B", "p_value"] == pytest.approx(2 / 4096)
    assert overall.loc["B", "p_holm"] >= overall.loc["B", "p_value"]
    # C differs from SIAM on one subject only: not significant.
    assert overall.loc["C", "p_value"] == pytest.approx(1.0)
    assert np.isnan(overall.loc["SIAM", "p_value"])
    assert overall.loc["SIAM", "cs_5"] == 1.0
    assert overall.loc["B", "cs_5"] == 1.0
    assert overall.loc["SIAM", "mae_low"] == overall.loc["SIAM", "mae_high"] == 1.0


def test_per_fold_and_cumulative(result):
    folds = result.per_fold[result.per_fold["method"] == "C"].set_index("fold")
    assert folds.loc[0, "mae"] == pytest.approx((2 * 9 + 6 * 1) / 8)  # subject 0 is in fold 0
    assert folds.loc[1, "mae"] == 1.0
    assert folds.loc[1, "videos"] == 8
    assert folds.loc[0, "cs_5"] == pytest.approx(6 / 8)
    assert folds.loc[0, "cs_10"] == 1.0
    cumulative = result.cumulative[result.cumulative["method"] == "B"].set_index("theta")
    assert list(cumulative.index) == list(range(16))
    assert cumulative.loc[2, "cs"] == 0.0
    assert cumulative.loc[3, "cs"] == 1.0


def test_group_cells_counts_order_and_small_marks():
    result = evaluate(make_predictions(), GROUPS, FAST, min_subjects=4)
    cells = result.groups[result.groups["method"] == "SIAM"]
    ages = cells[cells["grouping"] == "age_group"]
    assert list(ages["group"]) == ["8-9", "10-19", "20+"]  # age order, not string order
    assert list(ages["subjects"]) == [3, 3, 6]
    assert list(ages["videos"]) == [6, 6, 12]
    assert list(ages["few_subjects"]) == [True, True, False]
    combined = cells[cells["grouping"] == "gender_age_group"]
    assert list(combined["group"]) == ["female 8-9", "female 20+", "male 10-19", "male 20+"]
    assert set(result.groups["grouping"]) == set(GROUPINGS)
    smiles = cells[cells["grouping"] == "smile_type"]
    assert list(smiles["videos"]) == [12, 12]
    assert list(smiles["subjects"]) == [12, 12]
    b_cells = result.groups[(result.groups["method"] == "B") & (result.groups["grouping"] == "gender")]
    assert (b_cells["difference"] == -2.0).all()
    assert (b_cells["p_value"] < 0.05).all()


def test_metrics_file_part_is_json_and_names_groups(result):
    methods = metrics_by_method(result)
    json.dumps(methods, allow_nan=False)  # undefined values are null, not NaN
    assert set(methods) == {"SIAM", "B", "C"}
    assert "vs_SIAM" not in methods["SIAM"]
    assert methods["B"]["vs_SIAM"]["difference"] == -2.0
    assert methods["B"]["pearson_r"] == 1.0
    assert list(methods["SIAM"]["by_age_group"]) == ["8-9", "10-19", "20+"]
    assert methods["SIAM"]["by_age_group"]["8-9"] == {
        "mae": 1.0, "mae_low": 1.0, "mae_high": 1.0, "num_videos": 6, "num_subjects": 3, "few_subjects": True,
    }
    assert methods["C"]["mae_per_fold"]["1"] == 1.0
    assert result.describe()["bootstrap_resamples"] == 200


def test_without_reference_the_comparisons_are_empty():
    predictions = make_predictions()
    result = evaluate(predictions[predictions["method"] != "SIAM"], GROUPS, FAST)
    assert result.overall["p_value"].isna().all()
    assert all("vs_SIAM" not in values for values in metrics_by_method(result).values())


def test_write_tables_round_trip(result, tmp_path):
    write_tables(result, tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(TABLE_FILES.values())
    groups = pd.read_csv(tmp_path / "groups.csv", dtype={"group": str})
    assert list(groups.columns) == list(result.groups.columns)
    assert groups["few_subjects"].dtype == bool


def test_empty_predictions_rejected():
    with pytest.raises(ValueError, match="empty"):
        evaluate(make_predictions().iloc[:0], GROUPS, FAST)
