"""Training, prediction and cross-validation of SIAM (also importable as ``siamlib.train``)."""

from siamlib.training.checkpoint import load_checkpoint, save_checkpoint
from siamlib.training.config import TrainConfig
from siamlib.training.cross_validation import run_cross_validation
from siamlib.training.dataset import ClipDataset
from siamlib.training.fold import predict, train_fold
from siamlib.training.reproducibility import resolve_device, seed_everything

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
