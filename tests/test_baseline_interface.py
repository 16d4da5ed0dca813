"""The baseline interface: registry, cross-validation runner, and no test data in any fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from siamlib.baselines import dynamics
from siamlib.baselines.base import (
    Baseline,
    VideoSet,
    fit_fold,
    parse_methods,
    predict_fold,
    run_baseline,
    run_baselines,
)
from siamlib.baselines.frame_cnn import FrameCNN
from siamlib.baselines.handcrafted import DYNAMICS_UNAVAILABLE, HandcraftedSVR
from siamlib.models.siam import SIAM, SIAMConfig

ROOT = Path(__file__).resolve().parents[1]
TINY_SETTINGS = {
    "svr": {"C_grid": [1, 10], "gamma_grid": ["scale"], "epsilon_grid": [1.0], "inner_folds": 2},
    "model": {"channels": [4, 8], "attention_after_block": 1, "hidden_size": 4,
              "attention_size": 4},
    "train": {"epochs": 2, "batch_size": 4, "patience": 2},
    "validation_fraction": 0.2,
}


def toy_study(num_subjects: int = 18, seed: int = 0) -> tuple[VideoSet, np.ndarray]:
    """Two videos per subject (one per smile type), features that carry the age, 3 folds."""
    rng = np.random.default_rng(seed)
    subjects = np.repeat(np.arange(num_subjects), 2)
    ages = np.repeat(rng.integers(8, 70, num_subjects), 2)
    n = len(subjects)
    index = pd.DataFrame({
        "video": [f"v{row:03d}.mp4" for row in range(n)],
        "subject": subjects,
        "age": ages,
        "gender": np.where(subjects % 2 == 0, "female", "male"),
        "smile_type": np.tile(["spontaneous", "posed"], num_subjects),
    })
    dynamic_names = dynamics.feature_names()[:6]
    appearance_names = [f"lbp.neutral.r0c0.b{b}" for b in range(4)]
    values = rng.normal(size=(n, 10))
    values[:, :3] += ages[:, None] / 10.0
    features = pd.DataFrame(values, columns=dynamic_names + appearance_names)
    features.insert(0, DYNAMICS_UNAVAILABLE, 0)
    features.insert(0, "video", index["video"])
    clips = rng.integers(0, 256, size=(n, 3, 8, 8, 3), dtype=np.uint8)
    mask = np.ones((n, 3), dtype=bool)
    return VideoSet(index, clips, mask, features), subjects % 3


def default_methods() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())["baseline"]["methods"]


def corrupt_rows(data: VideoSet, rows: np.ndarray, seed: int = 1) -> VideoSet:
    """Replace everything about the videos at rows (clips, features, ages) by other values."""
    rng = np.random.default_rng(seed)
    index = data.index.copy()
    subjects = index.loc[rows, "subject"]
    new_age = dict(zip(subjects.unique(), rng.integers(8, 70, subjects.nunique())))
    index.loc[rows, "age"] = subjects.map(new_age).to_numpy()
    features = data.features.copy()
    numeric = [c for c in features.columns if c not in ("video", DYNAMICS_UNAVAILABLE)]
    features.loc[rows, numeric] = rng.normal(5.0, 3.0, size=(len(rows), len(numeric)))
    clips = data.clips.copy()
    clips[rows] = rng.integers(0, 256, size=clips[rows].shape, dtype=np.uint8)
    return VideoSet(index, clips, data.mask, features)


class Spy(Baseline):
    """Records what fit and predict receive; predicts 30 for every video."""

    name = "Spy"
    seen: list = []

    def fit(self, train, context):
        Spy.seen.append(("fit", context.fold, set(train.subjects.tolist()),
                         "age" in train.index.columns))

    def predict(self, test):
        with pytest.raises(KeyError, match="no ages"):
            test.ages
        Spy.seen.append(("predict", None, set(test.subjects.tolist()),
                         "age" in test.index.columns))
        return np.full(len(test), 30.0)


def test_parse_methods_of_params_yaml():
    specs = parse_methods(default_methods())
    names = [spec.name for spec in specs]
    assert names == ["Mean training age", "SVR (dynamics)", "SVR (appearance)",
                     "SVR (dynamics+appearance)", "SVR (dynamics+appearance, smile type known)",
                     "Per-frame CNN (mean of frame ages)"]


@pytest.mark.parametrize("methods, message", [
    ({}, "empty"),
    ({"a": {"features": "both"}}, "no 'class' key"),
    ({"a": {"class": "MeanAge"}}, "dotted import path"),
    ({"a": {"class": "siamlib.baselines.nothere.X"}}, "cannot import module"),
    ({"a": {"class": "siamlib.baselines.reference.Nothing"}}, "no attribute"),
    ({"a": {"class": "siamlib.baselines.reference.mean_age_predictions"}}, "no fit and predict"),
    ({"a": {"class": "siamlib.baselines.reference.MeanAge", "alpha": 1}}, "cannot construct"),
    ({"a": {"class": "siamlib.baselines.handcrafted.HandcraftedSVR", "features": "all"}},
     "features must be one of"),
    ({"a": {"class": "siamlib.baselines.reference.MeanAge"},
      "b": {"class": "siamlib.baselines.reference.MeanAge"}}, "both write the method name"),
])
def test_parse_methods_errors(methods, message):
    with pytest.raises(ValueError, match=message):
        parse_methods(methods)


def test_entry_name_overrides_class_name():
    spec, = parse_methods({"m": {"class": "siamlib.baselines.reference.MeanAge", "name": "Floor"}})
    assert spec.name == "Floor"
    assert spec.options == {}


def test_runner_hides_test_folds_and_ages(tmp_path, monkeypatch):
    monkeypatch.setattr(Spy, "seen", [])
    monkeypatch.setitem(__import__("sys").modules[__name__].__dict__, "Spy", Spy)
    data, folds = toy_study()
    spec, = parse_methods({"spy": {"class": f"{__name__}.Spy"}})
    predictions = run_baseline(spec, data, folds, seed=0, work_dir=tmp_path, progress=False)
    assert len(predictions) == len(data)
    assert (predictions["method"] == "Spy").all()
    fits = [entry for entry in Spy.seen if entry[0] == "fit"]
    predicts = [entry for entry in Spy.seen if entry[0] == "predict"]
    assert len(fits) == len(predicts) == 3
    subjects = data.subjects
    for (_, fold, train_subjects, has_ages), (_, _, test_subjects, test_has_ages) in zip(
        fits, predicts
    ):
        assert train_subjects == set(subjects[folds != fold].tolist())
        assert test_subjects == set(subjects[folds == fold].tolist())
        assert has_ages and not test_has_ages
        assert not train_subjects & test_subjects


@pytest.mark.parametrize("key", list(default_methods()))
def test_no_test_fold_data_reaches_any_fit(key, tmp_path):
    """Changing every value of the test fold's videos leaves the fitted model unchanged."""
    spec, = parse_methods({key: default_methods()[key]})
    data, folds = toy_study()
    test_rows = np.flatnonzero(folds == 0)
    corrupted = corrupt_rows(data, test_rows)
    probe = data.take(np.flatnonzero(folds != 0)[:6])
    torch.manual_seed(0)
    original = fit_fold(spec, data, folds, 0, 0, tmp_path / "a", TINY_SETTINGS)
    torch.manual_seed(0)
    changed = fit_fold(spec, corrupted, folds, 0, 0, tmp_path / "b", TINY_SETTINGS)
    np.testing.assert_array_equal(predict_fold(spec, original, probe),
                                  predict_fold(spec, changed, probe))
    # ...while changing a training fold's videos does change it (the check can fail).
    if key != "mean_age":
        data_changed = corrupt_rows(data, np.flatnonzero(folds == 1))
        other = fit_fold(spec, data_changed, folds, 0, 0, tmp_path / "c", TINY_SETTINGS)
        assert not np.array_equal(predict_fold(spec, original, probe),
                                  predict_fold(spec, other, probe))


def test_svr_scaler_fitted_on_training_rows_only(tmp_path):
    data, folds = toy_study()
    spec, = parse_methods({"svr": {"class": "siamlib.baselines.handcrafted.HandcraftedSVR",
                                   "features": "both"}})
    fitted = fit_fold(spec, data, folds, 2, 0, tmp_path, TINY_SETTINGS)
    scaler = fitted.models_["all"].search_.best_estimator_.named_steps["scaler"]
    train = data.features.iloc[np.flatnonzero(folds != 2)]
    columns = [c for c in data.features.columns if c not in ("video", DYNAMICS_UNAVAILABLE)]
    assert scaler.n_samples_seen_ == len(train)
    np.testing.assert_allclose(scaler.mean_, train[columns].to_numpy().mean(axis=0))


def test_smile_type_known_fits_one_svr_per_type(tmp_path):
    data, folds = toy_study()
    for mode, keys, width in (("separate", {"posed", "spontaneous"}, 10), ("feature", {"all"}, 11)):
        spec, = parse_methods({"s": {"class": "siamlib.baselines.handcrafted.HandcraftedSVR",
                                     "features": "both", "smile_type": mode}})
        fitted = fit_fold(spec, data, folds, 0, 0, tmp_path / mode, TINY_SETTINGS)
        assert set(fitted.models_) == keys
        for model in fitted.models_.values():
            assert model.search_.n_features_in_ == width
        rows = np.flatnonzero(folds == 0)
        assert predict_fold(spec, fitted, data.take(rows)).shape == (len(rows),)
    assert spec.name == "SVR (dynamics+appearance, smile type known)"


@pytest.mark.parametrize("features, fallback", [("both", "appearance"), ("dynamics", "mean")])
def test_videos_without_dynamics(features, fallback, tmp_path):
    data, folds = toy_study()
    unavailable = np.zeros(len(data), dtype=int)
    unavailable[[0, 1, 6, 7]] = 1  # subjects 0 and 3 (folds 0 and 0)
    unavailable[[2, 3]] = 1         # subject 1 (fold 1)
    data.features[DYNAMICS_UNAVAILABLE] = unavailable
    spec, = parse_methods({"s": {"class": "siamlib.baselines.handcrafted.HandcraftedSVR",
                                 "features": features}})
    fitted = fit_fold(spec, data, folds, 0, 0, tmp_path, TINY_SETTINGS)
    # The training videos without dynamics (subject 1) are left out of the fit.
    assert fitted.models_["all"].search_.best_estimator_.named_steps["scaler"] \
        .n_samples_seen_ == int(((folds != 0) & (unavailable == 0)).sum())
    test_rows = np.flatnonzero(folds == 0)
    predicted = predict_fold(spec, fitted, data.take(test_rows))
    assert fitted.fallback_count_ == 4
    without = np.isin(test_rows, [0, 1, 6, 7])
    if fallback == "mean":
        train_ages = data.ages[folds != 0]
        np.testing.assert_allclose(predicted[without], train_ages.mean())
    else:
        assert fitted.models_["appearance"].search_.n_features_in_ == 4


def test_dynamics_svr_without_dynamics_rejected(tmp_path):
    data, folds = toy_study()
    data.features[DYNAMICS_UNAVAILABLE] = 1
    spec, = parse_methods({"s": {"class": "siamlib.baselines.handcrafted.HandcraftedSVR",
                                 "features": "dynamics"}})
    with pytest.raises(ValueError, match="features.landmarks: dlib") as raised:
        fit_fold(spec, data, folds, 0, 0, tmp_path, TINY_SETTINGS)
    assert "fitting baseline 's' (HandcraftedSVR)" in raised.value.__notes__[0]


def test_both_svr_without_any_dynamics_uses_appearance(tmp_path):
    data, folds = toy_study()
    data.features[DYNAMICS_UNAVAILABLE] = 1
    spec, = parse_methods({"s": {"class": "siamlib.baselines.handcrafted.HandcraftedSVR",
                                 "features": "both"}})
    fitted = fit_fold(spec, data, folds, 0, 0, tmp_path, TINY_SETTINGS)
    rows = np.flatnonzero(folds == 0)
    predicted = predict_fold(spec, fitted, data.take(rows))
    assert set(fitted.models_) == {"appearance"}
    assert fitted.fallback_count_ == len(rows)
    expected = fitted.models_["appearance"].predict(
        data.features.iloc[rows][[c for c in data.features.columns if c.startswith("lbp.")]]
        .to_numpy())
    np.testing.assert_allclose(predicted, expected)


def test_separate_smile_type_missing_in_training(tmp_path):
    """A smile type without training subjects is predicted by the model of all types."""
    data, folds = toy_study()
    posed_training = (data.index["smile_type"] == "posed").to_numpy() & (folds != 0)
    data.features.loc[posed_training, DYNAMICS_UNAVAILABLE] = 1
    spec, = parse_methods({"s": {"class": "siamlib.baselines.handcrafted.HandcraftedSVR",
                                 "features": "dynamics", "smile_type": "separate"}})
    fitted = fit_fold(spec, data, folds, 0, 0, tmp_path, TINY_SETTINGS)
    assert set(fitted.models_) == {"spontaneous"}
    rows = np.flatnonzero(folds == 0)
    predicted = predict_fold(spec, fitted, data.take(rows))
    assert np.isfinite(predicted).all()
    assert set(fitted.models_) == {"spontaneous", "all types"}
    assert fitted.fallback_count_ == int((data.index["smile_type"].iloc[rows] == "posed").sum())


def test_features_in_another_order_rejected():
    data, _ = toy_study()
    with pytest.raises(ValueError, match="another order"):
        VideoSet(data.index, data.clips, data.mask, data.features.iloc[::-1])


def test_predict_returning_none_named(tmp_path):
    class Forgetful(Baseline):
        def fit(self, train, context):
            pass

        def predict(self, test):
            np.zeros(len(test))

    data, folds = toy_study()
    spec, = parse_methods({"m": {"class": "siamlib.baselines.reference.MeanAge"}})
    spec = type(spec)("forgetful", "Forgetful", Forgetful, {})
    with pytest.raises(ValueError, match="'forgetful': predict returned None"):
        run_baseline(spec, data, folds, 0, tmp_path, progress=False)


def test_entry_must_be_a_mapping():
    with pytest.raises(ValueError, match="must be a mapping"):
        parse_methods({"m": "siamlib.baselines.reference.MeanAge"})


def test_baseline_output_is_checked(tmp_path):
    class Short(Baseline):
        name = "Short"

        def fit(self, train, context):
            pass

        def predict(self, test):
            return np.zeros(len(test) - 1)

    data, folds = toy_study()
    spec, = parse_methods({"m": {"class": "siamlib.baselines.reference.MeanAge"}})
    spec = type(spec)("short", "Short", Short, {})
    with pytest.raises(ValueError, match="returned"):
        run_baseline(spec, data, folds, 0, tmp_path, progress=False)


def test_run_baselines_concatenates_methods(tmp_path):
    data, folds = toy_study()
    specs = parse_methods({key: entry for key, entry in default_methods().items()
                           if key in ("mean_age", "svr_dynamics")})
    predictions = run_baselines(specs, data, folds, 0, tmp_path, TINY_SETTINGS, progress=False)
    assert predictions.groupby("method").size().to_dict() == {
        "Mean training age": len(data), "SVR (dynamics)": len(data)}
    mean_rows = predictions[predictions["method"] == "Mean training age"]
    for fold in range(3):
        expected = data.ages[folds != fold].mean()
        np.testing.assert_allclose(mean_rows.loc[mean_rows["fold"] == fold, "predicted_age"],
                                   expected)


def test_frame_cnn_averages_frame_ages():
    config = SIAMConfig(image_size=16, channels=(4, 8), attention_after_block=1, hidden_size=4,
                        temporal_model="none", temporal_pooling="mean")
    torch.manual_seed(0)
    model = SIAM(config, age_mean=30.0, age_std=10.0).eval()
    torch.nn.init.normal_(model.head.weight)
    frames = torch.rand(2, 4, 3, 16, 16)
    mask = torch.tensor([[True, True, True, False], [True, False, True, True]])
    with torch.no_grad():
        output = model(frames, mask)
        single = [model(frames[b, t][None, None], torch.ones(1, 1, dtype=torch.bool)).age
                  for b in range(2) for t in range(4)]
    single = torch.cat(single).reshape(2, 4)
    expected = (single * mask).sum(1) / mask.sum(1)
    torch.testing.assert_close(output.age, expected)
    torch.testing.assert_close(output.temporal_attention, mask / mask.sum(1, keepdim=True))
    assert model.lstm is None


def test_frame_cnn_config_checks():
    with pytest.raises(ValueError, match="temporal_pooling='mean'"):
        SIAMConfig(temporal_model="none")
    with pytest.raises(ValueError, match="temporal_model must be one of"):
        SIAMConfig(temporal_model="gru")
    with pytest.raises(ValueError, match="sets .* itself"):
        FrameCNN(model={"temporal_model": "lstm"})
    baseline = FrameCNN(train={"epochs": 3})
    model_config, train_config = baseline.configs(TINY_SETTINGS, 16)
    assert model_config.temporal_model == "none"
    assert model_config.channels == (4, 8)
    assert train_config.epochs == 3
    assert train_config.batch_size == 4
