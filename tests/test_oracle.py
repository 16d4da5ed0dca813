"""Tests of the oracle age regressor on hand-made cue tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from siamlib.data.synthetic import oracle


def _cue_table(num_subjects: int = 60, videos_per_subject: int = 2, seed: int = 0) -> pd.DataFrame:
    """Build a cue table whose age is a noiseless function of `crows_feet_strength`.

    `onset_duration_s` is pure noise drawn per video, independent of age.
    """
    rng = np.random.default_rng(seed)
    ages = rng.integers(10, 71, size=num_subjects)
    rows = []
    for subject, age in enumerate(ages, start=1):
        for video in range(videos_per_subject):
            rows.append({
                "video": f"{subject:03d}_{video}.mp4",
                "subject": subject,
                "age": int(age),
                "gender": "female" if subject % 2 else "male",
                "smile_type": "posed" if video % 2 else "spontaneous",
                "crows_feet_strength": float(np.log(age)),
                "onset_duration_s": float(rng.normal()),
                "wrinkle_level": float(age) / 70.0,
            })
    return pd.DataFrame(rows)


def test_oracle_noiseless_cue_is_accurate() -> None:
    cues = _cue_table()
    baseline = oracle.mean_age_mae(cues)

    mae = oracle.oracle_mae(cues, ["crows_feet_strength", "onset_duration_s"])

    assert baseline > 10.0
    assert mae < 0.2 * baseline


def test_oracle_noise_cue_matches_baseline() -> None:
    cues = _cue_table(num_subjects=80)
    baseline = oracle.mean_age_mae(cues)

    mae = oracle.oracle_mae(cues, ["onset_duration_s"])

    assert mae > 0.85 * baseline
    assert mae < 1.25 * baseline


def test_oracle_folds_are_subject_disjoint(monkeypatch: pytest.MonkeyPatch) -> None:
    cues = _cue_table()
    calls: list[tuple[set, set]] = []
    fit_predict = oracle._fit_predict

    def spy(train: pd.DataFrame, test: pd.DataFrame, columns: list[str]) -> np.ndarray:
        calls.append((set(train["subject"]), set(test["subject"])))
        return fit_predict(train, test, columns)

    monkeypatch.setattr(oracle, "_fit_predict", spy)
    oracle.oracle_mae(cues, ["crows_feet_strength"], num_folds=4)

    assert len(calls) == 4
    for train_subjects, test_subjects in calls:
        assert not train_subjects & test_subjects
        assert train_subjects | test_subjects == set(cues["subject"])
    tested = [subject for _, test_subjects in calls for subject in test_subjects]
    assert sorted(tested) == sorted(cues["subject"].unique())


def test_oracle_is_deterministic() -> None:
    cues = _cue_table()
    columns = ["crows_feet_strength", "onset_duration_s"]

    assert oracle.oracle_mae(cues, columns, seed=3) == oracle.oracle_mae(cues, columns, seed=3)


def test_cue_columns_by_kind() -> None:
    cues = _cue_table()
    cues["apparent_age"] = cues["age"] + 0.5

    assert oracle.cue_columns(cues, "appearance") == ["apparent_age", "crows_feet_strength"]
    assert oracle.cue_columns(cues, "dynamics") == ["onset_duration_s"]
    assert oracle.cue_columns(cues, "all") == [
        "apparent_age", "crows_feet_strength", "onset_duration_s"
    ]


def test_cue_columns_drops_age_copy() -> None:
    cues = _cue_table()
    cues["apparent_age"] = cues["age"].astype(float)

    assert oracle.cue_columns(cues, "appearance") == ["crows_feet_strength"]


def test_oracle_report_rows() -> None:
    cues = _cue_table()

    report = oracle.oracle_report(cues, num_folds=3)

    assert list(report.columns) == ["predictor", "mae", "num_cues"]
    assert report["predictor"].tolist() == [
        "mean training age", "appearance oracle", "dynamics oracle", "all cues oracle"
    ]
    assert report["num_cues"].tolist() == [0, 1, 1, 2]
    assert report["mae"].notna().all()
    mae = dict(zip(report["predictor"], report["mae"]))
    assert mae["appearance oracle"] < 0.2 * mae["mean training age"]


def test_oracle_report_without_dynamics() -> None:
    cues = _cue_table().drop(columns="onset_duration_s")

    report = oracle.oracle_report(cues, num_folds=3).set_index("predictor")

    assert np.isnan(report.loc["dynamics oracle", "mae"])
    assert report.loc["dynamics oracle", "num_cues"] == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"cues": [1, 2]}, "cues must be a pandas DataFrame"),
        ({"cues": pd.DataFrame()}, "cues is empty"),
        ({"cues": pd.DataFrame({"age": [30]})}, "cues is missing"),
        ({"cue_columns": []}, "cue_columns must be a non-empty list"),
        ({"cue_columns": "crows_feet_strength"}, "cue_columns must be a non-empty list"),
        ({"cue_columns": ["age"]}, "cue_columns must not contain"),
        ({"cue_columns": ["absent"]}, "cue_columns names columns missing"),
        ({"cue_columns": ["gender_code"]}, "cue_columns entry 'gender_code' is not numeric"),
        ({"cue_columns": ["with_gap"]}, "cue_columns entry 'with_gap' has missing values"),
        ({"num_folds": 1}, "num_folds must be an integer >= 2"),
        ({"num_folds": True}, "num_folds must be an integer >= 2"),
        ({"num_folds": 2.5}, "num_folds must be an integer >= 2"),
        ({"num_folds": 1000}, "num_folds must be at most the number of subjects"),
        ({"seed": "0"}, "seed must be an integer"),
    ],
)
def test_oracle_mae_rejects_bad_arguments(arguments: dict, message: str) -> None:
    cues = _cue_table(num_subjects=10)
    cues["gender_code"] = cues["gender"]
    cues["with_gap"] = np.where(cues["subject"] == 1, np.nan, 1.0)
    call = {"cues": cues, "cue_columns": ["crows_feet_strength"], **arguments}

    with pytest.raises(ValueError, match=message):
        oracle.oracle_mae(**call)


def test_cue_columns_rejects_bad_kind() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        oracle.cue_columns(_cue_table(num_subjects=10), "texture")


def test_oracle_report_rejects_bad_num_folds() -> None:
    with pytest.raises(ValueError, match="num_folds must be an integer >= 2"):
        oracle.oracle_report(_cue_table(num_subjects=10), num_folds=0)


def test_oracle_single_training_subject() -> None:
    cues = _cue_table(num_subjects=2)

    mae = oracle.oracle_mae(cues, ["crows_feet_strength"], num_folds=2)

    assert np.isfinite(mae)


def test_default_benchmark_is_calibrated() -> None:
    # The calibration of siamlib.data.synthetic.cues: on the default 150-subject dataset the
    # all-cue oracle lands at 3 to 4 years, the mean predictor near UvA-NEMO's 14, and each
    # cue family alone is clearly worse than both together.
    from siamlib.data.synthetic import SyntheticConfig, latent_cue_table

    cues = latent_cue_table(SyntheticConfig(num_subjects=150), seed=0)
    report = oracle.oracle_report(cues, num_folds=5, seed=0).set_index("predictor")["mae"]
    assert 12.0 <= report["mean training age"] <= 16.0
    assert 3.0 <= report["all cues oracle"] <= 4.0
    assert report["appearance oracle"] >= 1.15 * report["all cues oracle"]
    assert report["dynamics oracle"] >= 1.15 * report["all cues oracle"]
