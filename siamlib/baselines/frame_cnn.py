"""Reference baseline: a per-frame CNN whose frame predictions are averaged.

The model is SIAM without its temporal part (:class:`~siamlib.models.siam.SIAMConfig` with
``temporal_model="none"``): the same CNN and spatial attention, a regression head on every
frame's features, and the mean of the frame ages over the clip's valid frames. Nothing
models the order of the frames, so the gap to SIAM shows what the LSTM and the temporal
attention add.

By default it is trained exactly like SIAM: the ``model`` and ``train`` sections of
params.yaml (passed in ``context.settings``), the same share of training subjects held out
for early stopping (``validation_fraction``), the same seed per fold. The options override
single keys of those sections.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from siamlib.baselines.base import Baseline, FitContext, VideoSet
from siamlib.data.splits import holdout_subjects
from siamlib.models.siam import SIAM, SIAMConfig
from siamlib.training.config import TrainConfig
from siamlib.training.fold import predict, train_fold

logger = logging.getLogger(__name__)

METHOD_NAME = "Per-frame CNN (mean of frame ages)"
# The architecture changes that remove the temporal model from SIAM.
FRAME_MODEL: dict[str, Any] = {
    "temporal_model": "none",
    "temporal_pooling": "mean",
    "bidirectional": False,
}


class FrameCNN(Baseline):
    """SIAM's CNN on each frame, frame ages averaged; trained like SIAM.

    Args:
        model: Keys of params.yaml's ``model`` section to change for this baseline.
        train: Keys of params.yaml's ``train`` section to change for this baseline.

    Attributes:
        model_: The trained model, after :meth:`fit`.
        history_: Training history of the fold (epoch, train_loss, val_mae), after :meth:`fit`.
    """

    name = METHOD_NAME

    def __init__(
        self,
        model: Mapping[str, Any] | None = None,
        train: Mapping[str, Any] | None = None,
    ) -> None:
        self.model_overrides = dict(model or {})
        self.train_overrides = dict(train or {})
        conflicting = sorted(set(self.model_overrides) & set(FRAME_MODEL))
        if conflicting:
            raise ValueError(f"FrameCNN sets {conflicting} itself; remove them from its model "
                             "options")
        self.model_: SIAM | None = None
        self.history_ = None
        self._batch_size = 32

    def configs(self, settings: Mapping[str, Any], image_size: int) -> tuple[SIAMConfig,
                                                                              TrainConfig]:
        """Build the model and training configs from the study's settings and the options."""
        model = {**dict(settings.get("model") or {}), **self.model_overrides, **FRAME_MODEL,
                 "image_size": int(image_size)}
        train = {**dict(settings.get("train") or {}), **self.train_overrides}
        return SIAMConfig.from_dict(model), TrainConfig.from_dict(train)

    def fit(self, train: VideoSet, context: FitContext) -> None:
        """Train on ``train`` with early stopping on held-out training subjects.

        The checkpoint goes to ``context.work_dir / "model.pt"``; a finished checkpoint of the
        same run is loaded instead of trained again, and an interrupted run continues from its
        resume state ``model.resume.pt`` (see ``siamlib.training.fold.train_fold``).
        """
        model_config, train_config = self.configs(context.settings, train.clips.shape[2])
        fraction = float(context.settings.get("validation_fraction", 0.0))
        validation = np.zeros(len(train), dtype=bool)
        if fraction > 0:
            validation = holdout_subjects(train.index, fraction, context.seed)
        self.model_, self.history_ = train_fold(
            model_config,
            train_config,
            train.clips,
            train.mask,
            train.ages,
            np.flatnonzero(~validation),
            np.flatnonzero(validation),
            context.work_dir / "model.pt",
            context.seed,
            progress=context.progress,
        )
        self._batch_size = train_config.batch_size

    def predict(self, test: VideoSet) -> np.ndarray:
        """Return the mean of the frame ages of every test clip, float (N,)."""
        if self.model_ is None:
            raise RuntimeError("FrameCNN.predict was called before fit")
        ages, _, _ = predict(self.model_, test.clips, test.mask, np.arange(len(test)),
                             batch_size=self._batch_size)
        return ages
