"""The one plotting style of the study, and PNG files that reruns reproduce byte for byte.

Kept apart from the figures themselves, so that stages which only save a figure (the
synthetic data, preprocessing, training) do not depend on the report's figure code.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

FIGURE_SIZE = (7.0, 4.0)
FIGURE_DPI = 110


def set_style() -> None:
    """Apply the one plotting style shared by every figure of the study."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams["figure.dpi"] = FIGURE_DPI


def save_figure(figure: plt.Figure, path: str | os.PathLike) -> None:
    """Save a figure as PNG with no creation time or software version in its metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight", metadata={"Software": None})
