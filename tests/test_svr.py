"""Tests of the RBF SVR baseline with subject-grouped inner cross-validation."""

from __future__ import annotations

import numpy as np
import pytest

from siamlib.baselines.svr import SVRBaseline


def toy_data(num_subjects: int = 20, clips: int = 3, seed: int = 0):
    """Return X (N, 3) with a constant third column, y = 30 + 15 sin(x0) + x1^2 and groups."""
    rng = np.random.default_rng(seed)
    num_rows = num_subjects * clips
    inputs = rng.uniform(-3, 3, size=(num_rows, 2))
    targets = 30 + 15 * np.sin(inputs[:, 0]) + inputs[:, 1] ** 2
    features = np.c_[inputs, np.full(num_rows, 7.0)]  # (N, 3)
    groups = np.repeat(np.arange(num_subjects), clips)  # (N,)
    return features, targets, groups


def test_svr_learns_nonlinear_function():
    X, y, groups = toy_data()
    train = groups < 15
    model = SVRBaseline(seed=1).fit(X[train], y[train], groups[train])
    predicted = model.predict(X[~train])
    mae = np.abs(predicted - y[~train]).mean()
    mean_baseline_mae = np.abs(y[train].mean() - y[~train]).mean()
    assert mae < 0.3 * mean_baseline_mae
    assert model.best_params_["C"] in (1.0, 10.0, 100.0)
    assert model.best_params_["gamma"] in ("scale", 0.01)
    assert model.best_params_["epsilon"] in (0.5, 2.0)


def test_svr_fits_training_rows_only():
    X, y, groups = toy_data()
    train = groups < 15
    model = SVRBaseline(seed=1).fit(X[train], y[train], groups[train])
    pipeline = model.search_.best_estimator_
    assert pipeline.named_steps["scaler"].n_samples_seen_ == train.sum()
    assert pipeline.named_steps["svr"].support_.max() < train.sum()
    test_subjects = set(groups[~train].tolist())
    for inner_train, inner_test in model.search_.cv.split(X[train], y[train], groups[train]):
        inner_train_subjects = set(groups[train][inner_train].tolist())
        inner_test_subjects = set(groups[train][inner_test].tolist())
        assert not inner_train_subjects & inner_test_subjects
        assert not (inner_train_subjects | inner_test_subjects) & test_subjects


def test_svr_drops_constant_feature():
    X, y, groups = toy_data()
    model = SVRBaseline(seed=0).fit(X, y, groups)
    support = model.search_.best_estimator_.named_steps["variance"].get_support()
    assert support.tolist() == [True, True, False]
    shifted = X.copy()
    shifted[:, 2] = 1e6
    np.testing.assert_allclose(model.predict(shifted), model.predict(X))


def test_svr_few_subjects_fewer_folds():
    X, y, groups = toy_data(num_subjects=3)
    model = SVRBaseline(inner_folds=5).fit(X, y, groups)
    assert model.search_.cv.get_n_splits() == 3
    assert np.all(np.isfinite(model.predict(X)))


def test_svr_invalid_inputs_rejected():
    X, y, groups = toy_data(num_subjects=4)
    with pytest.raises(RuntimeError, match="before fit"):
        SVRBaseline().predict(X)
    with pytest.raises(ValueError, match="constant"):
        SVRBaseline().fit(np.ones_like(X), y, groups)
    with pytest.raises(ValueError, match="at least 2 subjects"):
        SVRBaseline().fit(X, y, np.zeros_like(groups))
    with pytest.raises(ValueError, match="shape"):
        SVRBaseline().fit(X, y[:-1], groups)
    with pytest.raises(ValueError, match="C_grid"):
        SVRBaseline(C_grid=[])
    with pytest.raises(ValueError, match="inner_folds"):
        SVRBaseline(inner_folds=1)
