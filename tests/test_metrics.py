"""Metrics on small hand-made prediction tables with known answers."""

import json

import numpy as np
import pandas as pd
import pytest

from siamlib.evaluation.metrics import (
    DEFAULT_AGE_GROUPS,
    assign_age_group,
    group_mae_table,
    mean_age_mae,
    parse_age_groups,
    summarise,
)
from siamlib.evaluation.predictions import load_predictions, validate_predictions, write_predictions
from siamlib.evaluation.report import build_metrics, dataset_label, write_metrics


def make_predictions() -> pd.DataFrame:
    # Two folds; errors chosen so every MAE below can be computed by hand.
    rows = [
        # method, video, subject, fold, age, predicted, gender, smile type
        ("A", "v1", 1, 0, 8, 10.0, "female", "posed"),        # error 2
        ("A", "v2", 1, 0, 8, 8.0, "female", "spontaneous"),   # error 0
        ("A", "v3", 2, 0, 25, 21.0, "male", "posed"),         # error 4
        ("A", "v4", 3, 1, 65, 59.0, "male", "spontaneous"),   # error 6
        ("A", "v5", 4, 1, 41, 41.0, "female", "posed"),       # error 0
        ("B", "v1", 1, 0, 8, 9.0, "female", "posed"),         # error 1
        ("B", "v4", 3, 1, 65, 66.0, "male", "spontaneous"),   # error 1
    ]
    return pd.DataFrame(rows, columns=["method", "video", "subject", "fold", "age",
                                       "predicted_age", "gender", "smile_type"])


def test_age_groups_from_edges():
    groups = parse_age_groups([8, 10, 20, 30, 40, 50, 60])
    assert groups == DEFAULT_AGE_GROUPS
    with pytest.raises(ValueError, match="increasing"):
        parse_age_groups([10, 8])


def test_assign_age_group_edges():
    labels = assign_age_group([8, 9, 10, 19, 20, 59, 60, 76])
    assert list(labels) == ["8-9", "8-9", "10-19", "10-19", "20-29", "50-59", "60+", "60+"]


def test_summarise_known_values():
    summary = summarise(make_predictions())
    a = summary["A"]
    assert a["mae"] == pytest.approx(12 / 5)
    # Fold 0: (2 + 0 + 4) / 3 = 2; fold 1: (6 + 0) / 2 = 3; SD with ddof=1 of (2, 3).
    assert a["mae_per_fold"] == {"0": 2.0, "1": 3.0}
    assert a["mae_sd_folds"] == pytest.approx(np.std([2.0, 3.0], ddof=1), abs=1e-4)
    assert a["num_subjects"] == 4
    assert a["by_age_group"]["8-9"] == {"mae": 1.0, "num_videos": 2, "num_subjects": 1}
    assert a["by_age_group"]["60+"]["mae"] == 6.0
    assert "10-19" not in a["by_age_group"]
    assert a["by_gender"]["female"]["mae"] == pytest.approx(2 / 3, abs=1e-4)
    assert a["by_gender"]["male"]["mae"] == 5.0
    assert a["by_smile_type"]["posed"]["mae"] == 2.0
    assert summary["B"]["mae"] == 1.0
    assert summary["B"]["mae_sd_folds"] == 0.0


def test_group_table_orders_age_groups():
    table = group_mae_table(make_predictions(), "age_group")
    a = table[table["method"] == "A"]
    assert list(a["age_group"].astype(str)) == ["8-9", "20-29", "40-49", "60+"]
    with pytest.raises(ValueError, match="column"):
        group_mae_table(make_predictions(), "handedness")


def test_mean_age_mae():
    assert mean_age_mae([10, 20, 30, 40]) == 10.0


def test_validate_rejects_missing_column():
    with pytest.raises(ValueError, match="predicted_age"):
        validate_predictions(make_predictions().drop(columns="predicted_age"), source="x.csv")


def test_validate_rejects_duplicate_video():
    table = pd.concat([make_predictions(), make_predictions().iloc[:1]])
    with pytest.raises(ValueError, match="twice"):
        validate_predictions(table)


def test_load_predictions_round_trip(tmp_path):
    table = make_predictions()
    write_predictions(table[table["method"] == "A"], tmp_path / "a.csv")
    write_predictions(table[table["method"] == "B"], tmp_path / "b.csv")
    loaded = load_predictions(tmp_path)
    assert len(loaded) == len(table)
    assert summarise(loaded)["A"]["mae"] == pytest.approx(2.4)


def test_load_predictions_rejects_same_method_twice(tmp_path):
    table = make_predictions()
    write_predictions(table[table["method"] == "A"], tmp_path / "a.csv")
    write_predictions(table[table["method"] == "A"], tmp_path / "copy.csv")
    with pytest.raises(ValueError, match="appears in both"):
        load_predictions(tmp_path)


def test_load_predictions_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no predictions"):
        load_predictions(tmp_path)


def test_metrics_file_names_dataset(tmp_path):
    metrics = build_metrics(summarise(make_predictions()), "synthetic")
    write_metrics(metrics, tmp_path / "metrics.json")
    loaded = json.loads((tmp_path / "metrics.json").read_text())
    assert loaded["dataset"] == "synthetic"
    assert "not UvA-NEMO" in loaded["dataset_label"]
    assert loaded["methods"]["A"]["mae"] == pytest.approx(2.4)
    assert list(loaded["methods"]["A"]["by_age_group"]) == ["8-9", "20-29", "40-49", "60+"]
    with pytest.raises(ValueError, match="dataset name"):
        dataset_label("imdb")
