"""Training entry points for SIAM; the implementation lives in ``siamlib.training``."""

from siamlib.training import (
    ClipDataset,
    TrainConfig,
    load_checkpoint,
    predict,
    resolve_device,
    run_cross_validation,
    save_checkpoint,
    seed_everything,
    train_fold,
)

__all__ = [
    "ClipDataset",
    "TrainConfig",
    "load_checkpoint",
    "predict",
    "resolve_device",
    "run_cross_validation",
    "save_checkpoint",
    "seed_everything",
    "train_fold",
]
