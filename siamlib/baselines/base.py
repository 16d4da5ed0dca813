"""The interface every baseline implements, and the runner that cross-validates them.

A baseline is a class with two methods:

- ``fit(train, context)`` learns from the training videos of one outer fold. ``train`` is a
  :class:`VideoSet` with ages; ``context`` is a :class:`FitContext` (fold, seed, a folder
  for checkpoints, and the study-wide settings the stage passes on).
- ``predict(test)`` returns one age in years per video of ``test``, a :class:`VideoSet`
  of the fold's test videos whose ages have been removed.

Its constructor takes the options of its entry under ``baseline.methods`` in params.yaml::

    baseline:
      methods:
        svr_dynamics: {class: siamlib.baselines.handcrafted.HandcraftedSVR, features: dynamics}

``class`` is the import path of the class. ``name`` (optional) is the method name written
to the predictions table; without it the instance's ``name`` attribute is used, then the
key. Every other key is passed to the constructor, which should only store its options:
:func:`parse_methods` builds one instance to check them. :func:`run_baselines` builds a fresh instance per fold, so
nothing learnt on one fold reaches another, and gives ``fit`` only the rows of the other
folds. The evaluation reads every method in the predictions table, so a registered baseline
appears in every table and figure without other edits (README, "Add a baseline").

Handcrafted features are computed per video before the folds are made. They have no fitted
parameters: each video's features depend on that video alone.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from tqdm import tqdm

logger = logging.getLogger(__name__)

INDEX_COLUMNS: tuple[str, ...] = ("video", "subject", "age", "gender", "smile_type")
# Keys of a params.yaml entry that the runner reads; the others go to the constructor.
RESERVED_KEYS: tuple[str, ...] = ("class", "name")


@dataclass(frozen=True)
class VideoSet:
    """A set of videos as a baseline receives them; row i of every field is video i.

    Shape letters: N videos, T frames per clip, S the side of the aligned square crop.

    Attributes:
        index: One row per video with at least video, subject, gender and smile_type; age
            too in a training set, never in a test set. A ``track_path`` column, where
            present, names the video's landmark track (``.npz`` with ``landmarks`` and
            ``fps``).
        clips: Aligned faces, uint8 (N, T, S, S, 3).
        mask: bool (N, T), True on valid frames.
        features: Handcrafted features (:func:`siamlib.baselines.handcrafted.extract_features`),
            one row per video in index order; an empty table when none were computed.
    """

    index: pd.DataFrame
    clips: np.ndarray
    mask: np.ndarray
    features: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        num_videos = len(self.index)
        if self.clips.ndim != 5 or self.clips.dtype != np.uint8 or self.clips.shape[-1] != 3:
            raise ValueError(f"clips must be uint8 of shape (N, T, S, S, 3), got "
                             f"{self.clips.dtype} {self.clips.shape}")
        if len(self.clips) != num_videos or self.mask.shape != self.clips.shape[:2]:
            raise ValueError(f"index ({num_videos} rows), clips {self.clips.shape} and mask "
                             f"{self.mask.shape} must describe the same videos")
        if len(self.features) and len(self.features) != num_videos:
            raise ValueError(f"features has {len(self.features)} rows but index has "
                             f"{num_videos}")
        if len(self.features) and "video" in self.features.columns and not np.array_equal(
            self.features["video"].astype(str).to_numpy(),
            self.index["video"].astype(str).to_numpy(),
        ):
            raise ValueError("features and index list different videos or the same videos in "
                             "another order; reorder features by the index's video column")

    def __len__(self) -> int:
        return len(self.index)

    @property
    def ages(self) -> np.ndarray:
        """Ages in years, float64 (N,).

        Raises:
            KeyError: In a test set, whose ages are hidden from the baseline.
        """
        if "age" not in self.index.columns:
            raise KeyError("this VideoSet has no ages: predict() receives test videos without "
                           "their ages")
        return self.index["age"].to_numpy(dtype=np.float64)

    @property
    def subjects(self) -> np.ndarray:
        """Subject id of every video, (N,)."""
        return self.index["subject"].to_numpy()

    def take(self, rows: np.ndarray) -> VideoSet:
        """Return the videos at ``rows`` (integer positions) as a new set with copied arrays."""
        rows = np.asarray(rows, dtype=np.int64)
        features = self.features.iloc[rows].reset_index(drop=True) if len(self.features) \
            else self.features
        return VideoSet(
            index=self.index.iloc[rows].reset_index(drop=True),
            clips=np.ascontiguousarray(self.clips[rows]),
            mask=np.asarray(self.mask[rows]),
            features=features,
        )

    def without_ages(self) -> VideoSet:
        """Return the set with the age column removed, as :meth:`Baseline.predict` gets it."""
        return VideoSet(self.index.drop(columns=["age"], errors="ignore"), self.clips, self.mask,
                        self.features)


@dataclass(frozen=True)
class FitContext:
    """Inputs of a baseline's ``fit`` besides the training videos.

    Attributes:
        fold: The outer fold whose test videos the fitted model will predict.
        seed: Seed for this fold (the study's seed plus the fold number).
        work_dir: A folder of its own for checkpoints, created by the runner.
        settings: Study-wide settings the baselines stage passes to every baseline, e.g.
            ``svr`` (the shared SVR grid), ``model`` and ``train`` (SIAM's sections) and
            ``validation_fraction``. A baseline reads the keys it needs.
        progress: Whether the baseline may show progress bars.
    """

    fold: int
    seed: int
    work_dir: Path
    settings: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = False


class Baseline:
    """Base class of the baselines: subclass it and implement :meth:`fit` and :meth:`predict`.

    Attributes:
        name: Method name in the predictions table, unless the params.yaml entry sets one.
    """

    name: ClassVar[str] = ""

    def fit(self, train: VideoSet, context: FitContext) -> None:
        """Learn from the training videos of one fold (ages in ``train.ages``)."""
        raise NotImplementedError

    def predict(self, test: VideoSet) -> np.ndarray:
        """Return the predicted age in years of every video in ``test``, float (N,)."""
        raise NotImplementedError


@dataclass(frozen=True)
class BaselineSpec:
    """A baseline registered in params.yaml: its key, method name, class and options."""

    key: str
    name: str
    cls: type
    options: Mapping[str, Any]

    def build(self) -> Baseline:
        """Construct a fresh instance from the options."""
        try:
            return self.cls(**self.options)
        except TypeError as error:
            raise ValueError(f"baseline {self.key!r}: cannot construct {self.cls.__name__} from "
                             f"the options {dict(self.options)}: {error}") from error


def load_class(path: str) -> type:
    """Import a class from its dotted path, e.g. ``"siamlib.baselines.reference.MeanAge"``.

    Raises:
        ValueError: If the path has no module part, the module cannot be imported, or it has
            no such attribute.
    """
    module_name, _, attribute = str(path).rpartition(".")
    if not module_name:
        raise ValueError(f"class must be a dotted import path such as "
                         f"'siamlib.baselines.reference.MeanAge', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import module {module_name!r} of class {path!r}: {error}. "
                         "Check the spelling, and that the file is inside the project "
                         "(e.g. siamlib/baselines/)") from error
    if not hasattr(module, attribute):
        raise ValueError(f"module {module_name!r} has no attribute {attribute!r} (from {path!r})")
    return getattr(module, attribute)


def parse_methods(methods: Mapping[str, Mapping[str, Any]]) -> list[BaselineSpec]:
    """Turn the ``baseline.methods`` mapping of params.yaml into specs, in its order.

    Raises:
        ValueError: If an entry has no class, the class cannot be loaded or lacks fit and
            predict, or two entries share a method name.
    """
    if not methods:
        raise ValueError("baseline.methods is empty: register at least one baseline")
    specs = []
    names: dict[str, str] = {}
    for key, entry in methods.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"baseline.methods.{key} must be a mapping such as "
                             f"{{class: siamlib.baselines.reference.MeanAge}}, got {entry!r}")
        entry = dict(entry)
        if "class" not in entry:
            raise ValueError(f"baseline.methods.{key} has no 'class' key; give the import path "
                             f"of its class, e.g. siamlib.baselines.reference.MeanAge")
        cls = load_class(entry["class"])
        if not (callable(getattr(cls, "fit", None)) and callable(getattr(cls, "predict", None))):
            raise ValueError(f"baseline.methods.{key}: {entry['class']} has no fit and predict "
                             "methods (see siamlib.baselines.base.Baseline)")
        options = {k: v for k, v in entry.items() if k not in RESERVED_KEYS}
        # Building an instance checks the options now, before any fold runs, and gives the
        # name of classes whose name depends on their options.
        instance = BaselineSpec(str(key), str(key), cls, options).build()
        name = str(entry.get("name") or getattr(instance, "name", "") or key)
        if name in names:
            raise ValueError(f"baseline.methods.{key} and baseline.methods.{names[name]} both "
                             f"write the method name {name!r}; set a distinct 'name'")
        names[name] = key
        specs.append(BaselineSpec(str(key), name, cls, options))
    return specs


def _check_inputs(data: VideoSet, folds: np.ndarray) -> np.ndarray:
    missing = [column for column in INDEX_COLUMNS if column not in data.index.columns]
    if missing:
        raise ValueError(f"the videos' index is missing the columns {missing}")
    folds = np.asarray(folds)
    if folds.shape != (len(data),) or not np.issubdtype(folds.dtype, np.integer):
        raise ValueError(f"folds must be an integer array of shape ({len(data)},), got "
                         f"{folds.dtype} {folds.shape}")
    if np.unique(folds).size < 2:
        raise ValueError("folds must contain at least two folds")
    per_subject = pd.Series(folds).groupby(data.subjects).nunique()
    if (per_subject > 1).any():
        shared = per_subject.index[per_subject > 1].tolist()
        raise ValueError(f"subjects {shared[:10]} appear in more than one fold")
    return folds


def fit_fold(
    spec: BaselineSpec,
    data: VideoSet,
    folds: np.ndarray,
    fold: int,
    seed: int,
    work_dir: str | os.PathLike[str],
    settings: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> Baseline:
    """Build a fresh baseline and fit it on every video outside ``fold``.

    The baseline receives copies of the training rows only; the fold's videos never reach it.

    Returns:
        The fitted baseline.
    """
    folds = _check_inputs(data, folds)
    train_rows = np.flatnonzero(folds != fold)
    context = FitContext(
        fold=int(fold),
        seed=int(seed) + int(fold),
        work_dir=Path(work_dir) / spec.key / f"fold_{int(fold)}",
        settings=dict(settings or {}),
        progress=progress,
    )
    context.work_dir.mkdir(parents=True, exist_ok=True)
    baseline = spec.build()
    try:
        baseline.fit(data.take(train_rows), context)
    except Exception as error:
        error.add_note(f"while fitting baseline {spec.key!r} ({spec.cls.__name__}) on the "
                       f"training videos of fold {int(fold)}")
        raise
    return baseline


def predict_fold(spec: BaselineSpec, baseline: Baseline, test: VideoSet) -> np.ndarray:
    """Predict ``test`` (ages removed first) and check the output.

    Raises:
        ValueError: If the baseline returns the wrong number of ages or a non-finite one.
    """
    try:
        output = baseline.predict(test.without_ages())
    except Exception as error:
        error.add_note(f"while predicting with baseline {spec.key!r} ({spec.cls.__name__})")
        raise
    if output is None:
        raise ValueError(f"baseline {spec.key!r}: predict returned None; it must return one "
                         f"age per test video, an array of shape ({len(test)},)")
    predicted = np.asarray(output, dtype=np.float64)
    if predicted.shape != (len(test),):
        raise ValueError(f"baseline {spec.key!r} returned {predicted.shape} ages for "
                         f"{len(test)} test videos; predict must return shape (N,)")
    if not np.isfinite(predicted).all():
        raise ValueError(f"baseline {spec.key!r} predicted a non-finite age for videos "
                         f"{test.index['video'].to_numpy()[~np.isfinite(predicted)][:5].tolist()}")
    return predicted


def run_baseline(
    spec: BaselineSpec,
    data: VideoSet,
    folds: np.ndarray,
    seed: int,
    work_dir: str | os.PathLike[str],
    settings: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Cross-validate one baseline: fit on the other folds, predict each fold's videos.

    Returns:
        The predictions table (:mod:`siamlib.evaluation.predictions`), one row per video in
        ``data.index`` order, with ``spec.name`` as the method.
    """
    folds = _check_inputs(data, folds)
    predicted = np.full(len(data), np.nan)
    ages = data.ages
    for fold in tqdm(np.unique(folds), desc=spec.name, disable=not progress):
        baseline = fit_fold(spec, data, folds, int(fold), seed, work_dir, settings, progress)
        test_rows = np.flatnonzero(folds == fold)
        predicted[test_rows] = predict_fold(spec, baseline, data.take(test_rows))
        logger.info("%s fold %d: %d train, %d test videos, MAE %.2f years", spec.name, fold,
                    len(data) - len(test_rows), len(test_rows),
                    np.abs(predicted[test_rows] - ages[test_rows]).mean())
    index = data.index
    return pd.DataFrame({
        "method": spec.name,
        "video": index["video"].to_numpy(),
        "subject": index["subject"].to_numpy().astype(int),
        "fold": folds.astype(int),
        "age": index["age"].to_numpy().astype(int),
        "predicted_age": predicted,
        "gender": index["gender"].to_numpy(),
        "smile_type": index["smile_type"].to_numpy(),
    })


def run_baselines(
    specs: Sequence[BaselineSpec],
    data: VideoSet,
    folds: np.ndarray,
    seed: int,
    work_dir: str | os.PathLike[str],
    settings: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Cross-validate every registered baseline and concatenate their predictions."""
    tables = [run_baseline(spec, data, folds, seed, work_dir, settings, progress)
              for spec in specs]
    return pd.concat(tables, ignore_index=True)


def write_run_summary(
    path: str | os.PathLike[str], specs: Sequence[BaselineSpec], **details: Any
) -> None:
    """Write which baselines ran (key, method name, class, options) and ``details`` as JSON."""
    summary = {
        "methods": [
            {"key": spec.key, "name": spec.name,
             "class": f"{spec.cls.__module__}.{spec.cls.__qualname__}",
             "options": dict(spec.options)}
            for spec in specs
        ],
        **details,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
