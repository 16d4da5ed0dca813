"""Training settings for SIAM."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from siamlib.config import config_from_mapping
from siamlib.evaluation.metrics import DEFAULT_AGE_GROUPS

LOSSES: tuple[str, ...] = ("l1", "mse")
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


@dataclass
class TrainConfig:
    """Settings for training SIAM on one cross-validation fold.

    Attributes:
        epochs: Maximum number of passes over the training clips.
        batch_size: Clips per optimisation step.
        learning_rate: Step size of the optimiser.
        weight_decay: L2 penalty (Adam) or decoupled weight decay (AdamW).
        optimizer: ``"adam"`` or ``"adamw"``.
        patience: Stop after this many epochs without a lower validation MAE.
        loss: ``"l1"`` (absolute error in years) or ``"mse"`` (squared error in years^2).
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
        num_threads: CPU threads for PyTorch during training; None keeps PyTorch's setting.
        horizontal_flip: Mirror each training clip with probability 0.5, the same way in all
            of its frames.
        reweight_age_groups: Weight each training clip's loss by the inverse frequency of its
            age group among the training clips, normalised to mean 1, so scarce groups count
            more. The ``train_loss`` in the history stays the unweighted mean loss.
        age_group_edges: Lower edges of the age groups for ``reweight_age_groups``, as in
            ``siamlib.evaluation.metrics.parse_age_groups``; strictly increasing integers.
        temporal_augment: Replace each training clip by a random run of its valid frames with
            stride 1 or 2, moved to the front of the clip. The frames after the run become
            padding.
        temporal_min_fraction: Fewest frames that ``temporal_augment`` keeps, as a fraction of
            the clip's valid frames (rounded up), in (0, 1].
        spatial_augment: Apply one small random rotation, translation, scaling, brightness and
            contrast change to all frames of each training clip (see
            ``siamlib.training.augment``).
        num_workers: DataLoader worker processes that read and batch the training clips; 0
            reads them in the training process. The batches, and so the results, are the same
            for every value.
        precision: ``"auto"`` (bfloat16 autocast on CUDA, float32 on CPU), ``"fp32"`` or
            ``"bf16"`` (bfloat16 autocast on any device; slow on CPUs without bfloat16
            instructions). Autocast runs the convolutions and matrix products in bfloat16 and
            keeps the weights, the loss and the optimiser in float32.
        channels_last: Store the convolution weights and activations channels-last (NHWC),
            which GPU convolution kernels prefer: ``"auto"`` (on CUDA only), True or False.
        compile: Compile the model with ``torch.compile`` before training. The first epoch
            then includes the compilation (tens of seconds); it needs a C++ compiler on CPU.

    ``batch_size`` is the effective batch: with several processes under torchrun (see
    ``siamlib.training.distributed``), each process computes its share of every batch.

    Every option that changes training defaults to the behaviour from before it existed, so a
    checkpoint written without a field is reused as if the field had its default (see
    ``siamlib.training.fold``). Validation and prediction never augment.
    """

    epochs: int = 30
    batch_size: int = 8
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    patience: int = 6
    loss: str = "l1"
    device: str = "auto"
    num_threads: int | None = None
    horizontal_flip: bool = False
    reweight_age_groups: bool = False
    age_group_edges: tuple[int, ...] = tuple(lower for _label, lower, _upper in DEFAULT_AGE_GROUPS)
    temporal_augment: bool = False
    temporal_min_fraction: float = 0.6
    spatial_augment: bool = False
    num_workers: int = 0
    precision: str = "auto"
    channels_last: bool | str = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or (
            self.num_workers < 0
        ):
            raise ValueError(
                f"num_workers must be a non-negative integer, got {self.num_workers!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not (self.channels_last == "auto" or isinstance(self.channels_last, bool)):
            raise ValueError(
                f'channels_last must be "auto", true or false, got {self.channels_last!r}'
            )
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be true or false, got {self.compile!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(
                f"num_threads must be a positive integer or None, got {self.num_threads!r}"
            )
        edges = tuple(self.age_group_edges)
        if (
            not edges
            or any(isinstance(edge, bool) or not isinstance(edge, int) for edge in edges)
            or any(upper <= lower for lower, upper in zip(edges, edges[1:]))
        ):
            raise ValueError(
                f"age_group_edges must be a non-empty, strictly increasing list of integers, "
                f"got {self.age_group_edges!r}"
            )
        self.age_group_edges = edges
        if not 0.0 < self.temporal_min_fraction <= 1.0:
            raise ValueError(
                f"temporal_min_fraction must be in (0, 1], got {self.temporal_min_fraction!r}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build a config from a mapping such as the ``train`` section of params.yaml.

        Raises:
            ValueError: If a key is not a field of the config, or a value is invalid.
        """
        return config_from_mapping(cls, values)
