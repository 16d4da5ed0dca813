"""Ablation variants, training subsets and learning curves (siamlib.experiments)."""

import numpy as np
import pandas as pd
import pytest
import torch

from siamlib.evaluation.metrics import DEFAULT_AGE_GROUPS
from siamlib.experiments import (
    ablation_table,
    describe_overrides,
    first_folds,
    learning_curve_table,
    svr_learning_curve,
    variant_configs,
)
from siamlib.baselines.base import VideoSet
from siamlib.models.siam import SIAMConfig
from siamlib.training.config import TrainConfig
from siamlib.training.cross_validation import run_cross_validation, subsample_training_subjects

MODEL = {"channels": [4, 8], "attention_after_block": 1, "hidden_size": 8, "attention_size": 4,
         "dropout": 0.0}
TRAIN = {"epochs": 30, "batch_size": 8, "patience": 10, "device": "cpu"}


def test_subsample_nested_and_within_candidates():
    subjects = np.repeat(np.arange(20), 2)
    candidates = subjects >= 4
    subsets = {f: subsample_training_subjects(subjects, candidates, f, seed=3)
            for f in (0.25, 0.5, 1.0)}
    assert not subsets[1.0][~candidates].any()
    assert np.array_equal(subsets[1.0], candidates)
    assert len(np.unique(subjects[subsets[0.25]])) == 4  # ceil(0.25 * 16)
    assert not (subsets[0.25] & ~subsets[0.5]).any(), "a smaller share keeps a subset"
    # All clips of a kept subject are kept.
    for subject in np.unique(subjects[subsets[0.5]]):
        assert subsets[0.5][subjects == subject].all()


def test_subsample_keeps_two_subjects_and_rejects_bad_fraction():
    subjects = np.arange(10)
    subset = subsample_training_subjects(subjects, np.ones(10, bool), 0.01, seed=0)
    assert subset.sum() == 2
    with pytest.raises(ValueError, match="fraction"):
        subsample_training_subjects(subjects, np.ones(10, bool), 0.0, seed=0)


def test_variant_configs_apply_overrides_and_budget():
    model_config, train_config = variant_configs(
        MODEL, TRAIN, {"model": {"spatial_attention": "none"}, "train": {"loss": "mse"}},
        image_size=16, epochs=5, patience=2,
    )
    assert isinstance(model_config, SIAMConfig) and isinstance(train_config, TrainConfig)
    assert model_config.spatial_attention == "none"
    assert model_config.image_size == 16
    assert train_config.loss == "mse"
    assert train_config.epochs == 5
    assert train_config.patience == 2
    unchanged, _ = variant_configs(MODEL, TRAIN, {}, image_size=16)
    assert unchanged.spatial_attention == SIAMConfig().spatial_attention
    assert MODEL.get("spatial_attention") is None, "the base section is not modified"


def test_variant_configs_reject_unknown_section_and_key():
    with pytest.raises(ValueError, match="may only change"):
        variant_configs(MODEL, TRAIN, {"preprocess": {"num_frames": 4}}, image_size=16)
    with pytest.raises(ValueError):
        variant_configs(MODEL, TRAIN, {"model": {"no_such_option": 1}}, image_size=16)


def test_describe_overrides_and_first_folds():
    assert describe_overrides({}) == "as configured"
    text = describe_overrides({"model": {"b": 2, "a": 1}, "train": {"loss": "mse"}})
    assert text == "model.a=1, model.b=2, train.loss=mse"
    assert first_folds(np.array([3, 1, 1, 0, 2]), 2) == [0, 1]
    assert first_folds(np.array([1, 0]), 5) == [0, 1]


@pytest.fixture(scope="module")
def toy():
    """Clips whose brightness encodes the age: 24 subjects of 2 clips, 4 folds."""
    rng = np.random.default_rng(1)
    num_subjects, num_frames, size = 24, 4, 16
    subject_ages = rng.uniform(10, 60, num_subjects)
    ages = np.repeat(subject_ages, 2)
    brightness = ages[:, None, None, None, None] / 70 * 255
    noise = rng.normal(0, 8, (len(ages), num_frames, size, size, 3))
    clips = np.clip(brightness + noise, 0, 255).astype(np.uint8)
    mask = np.ones(clips.shape[:2], dtype=bool)
    subjects = np.repeat(np.arange(num_subjects), 2)
    index = pd.DataFrame({
        "video": [f"{i:03d}.mp4" for i in range(len(ages))],
        "subject": subjects,
        "age": ages.round().astype(int),
        "gender": np.where(subjects % 2, "male", "female"),
        "smile_type": np.where(np.arange(len(ages)) % 2, "posed", "spontaneous"),
    })
    folds = subjects % 4
    return clips, mask, index, folds


def test_cross_validation_tests_only_chosen_folds(toy, tmp_path):
    clips, mask, index, folds = toy
    torch.set_num_threads(1)
    model_config, train_config = variant_configs(MODEL, TRAIN, {}, image_size=16, epochs=2)
    predictions, spatial, temporal, history = run_cross_validation(
        model_config, train_config, clips, mask, index, folds, 0.2, tmp_path, seed=0,
        progress=False, test_folds=[1], train_fraction=0.5, method="half",
    )
    assert set(predictions["fold"]) == {1}
    assert len(predictions) == (folds == 1).sum()
    assert (predictions["method"] == "half").all()
    assert set(history["fold"]) == {1}
    assert np.all(temporal[folds != 1] == 0)
    assert [p.name for p in tmp_path.iterdir()] == ["fold_1.pt"]


def test_cross_validation_rejects_unknown_test_fold(toy, tmp_path):
    clips, mask, index, folds = toy
    model_config, train_config = variant_configs(MODEL, TRAIN, {}, image_size=16, epochs=1)
    with pytest.raises(ValueError, match="test_folds"):
        run_cross_validation(model_config, train_config, clips, mask, index, folds, 0.2,
                             tmp_path, seed=0, progress=False, test_folds=[9])


def test_svr_learning_curve_improves_with_data(toy):
    clips, mask, index, folds = toy
    rng = np.random.default_rng(0)
    ages = index["age"].to_numpy(float)
    features = pd.DataFrame({
        "video": index["video"],
        "lbp.0": ages + rng.normal(0, 2, len(ages)),
        "lbp.1": rng.normal(0, 1, len(ages)),
    })
    settings = {"C_grid": [100.0], "gamma_grid": ["scale"], "epsilon_grid": [1.0],
                "inner_folds": 2}
    data = VideoSet(index, clips, mask, features)
    predictions = svr_learning_curve(data, folds, [0, 1], [0.2, 1.0], "appearance",
                                     settings, seed=0)
    assert set(predictions["fraction"]) == {0.2, 1.0}
    assert set(predictions["fold"]) == {0, 1}
    table = learning_curve_table(predictions)
    pooled = table[table["fold"] == "all"].set_index("fraction")["MAE"]
    assert pooled[1.0] < pooled[0.2]
    per_fold = table[(table["fold"] != "all") & (table["fraction"] == 1.0)]
    assert len(per_fold) == 2


def test_ablation_table_rows_and_columns():
    rows = []
    for method, error in (("siam", 2.0), ("no_attention", 4.0)):
        for fold, age in ((0, 30), (1, 50), (1, 9)):
            rows.append({"method": method, "video": f"{fold}_{age}.mp4", "subject": age,
                         "fold": fold, "age": age, "predicted_age": age + error,
                         "gender": "female", "smile_type": "posed"})
    predictions = pd.DataFrame(rows)
    summaries = {
        "siam": {"overrides": {}, "num_parameters": 10, "train_seconds": 1.5,
                 "faithfulness": {"spatial_planted": {"mean": 1.3, "sd": 0.1, "n": 3}}},
        "no_attention": {"overrides": {"model": {"spatial_attention": "none"}},
                         "num_parameters": 8, "train_seconds": 1.0, "faithfulness": None},
    }
    table = ablation_table(predictions, summaries, DEFAULT_AGE_GROUPS)
    assert list(table["variant"]) == ["siam", "no_attention"]
    assert list(table["MAE"]) == [2.0, 4.0]
    assert table.loc[0, "spatial_planted"] == 1.3
    assert np.isnan(table.loc[1, "spatial_planted"])
    assert table.loc[1, "changes"] == "model.spatial_attention=none"
    assert table.loc[0, "MAE 8-9"] == 2.0
    assert "MAE female" in table.columns
    # Every subject's error is 2 years larger without attention: siam − variant is -2.
    assert table.loc[1, "siam − variant"] == -2.0
    assert np.isnan(table.loc[0, "p vs siam"])
    # Three tied differences of one sign: 2 of the 2^3 sign flips are as extreme.
    assert table.loc[1, "p vs siam"] == pytest.approx(0.25)
    assert table.loc[1, "MAE low"] == table.loc[1, "MAE high"] == 4.0
    assert table.loc[0, "RMSE"] == 2.0
    assert table.loc[1, "CS(5)"] == 1.0
    assert table.loc[1, "CS(10)"] == 1.0
    with pytest.raises(ValueError, match="no predictions"):
        ablation_table(predictions, {"missing": summaries["siam"]}, DEFAULT_AGE_GROUPS)


def test_attention_extracted_from_saved_checkpoint(toy, tmp_path):
    # The README's recipe: rebuild a trained model from its checkpoint file and read the
    # attention of any clip.
    from siamlib.models.siam import SIAM
    from siamlib.train import load_checkpoint, predict

    clips, mask, index, folds = toy
    model_config, train_config = variant_configs(MODEL, TRAIN, {}, image_size=16, epochs=2)
    _, spatial, temporal, _ = run_cross_validation(
        model_config, train_config, clips, mask, index, folds, 0.2, tmp_path, seed=0,
        progress=False, test_folds=[2],
    )
    checkpoint = load_checkpoint(tmp_path / "fold_2.pt")
    model = SIAM(SIAMConfig.from_dict(checkpoint["model_config"]), checkpoint["age_mean"],
                 checkpoint["age_std"])
    model.load_state_dict(checkpoint["model_state"])
    rows = np.flatnonzero(folds == 2)
    _, extracted_spatial, extracted_temporal = predict(model.eval(), clips, mask, rows)
    np.testing.assert_allclose(extracted_spatial, spatial[rows], atol=1e-6)
    np.testing.assert_allclose(extracted_temporal, temporal[rows], atol=1e-6)
