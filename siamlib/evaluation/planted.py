"""Attention scored against the planted ground truth of the synthetic benchmark.

Reads the clip cache's table and the dataset's ground-truth files; imports no model, so the
evaluation can score attention without PyTorch.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from siamlib.data.synthetic.ground_truth import AttentionTargets, has_ground_truth, load_attention_targets
from siamlib.evaluation.faithfulness import score_videos
from siamlib.video.clips import load_sampled_indices


def attention_faithfulness(
    dataset_root: str | os.PathLike[str],
    index: pd.DataFrame,
    mask: np.ndarray,
    spatial: np.ndarray,
    temporal: np.ndarray,
    rows: np.ndarray | None = None,
) -> tuple[pd.DataFrame, AttentionTargets] | None:
    """Score attention against the planted ground truth of a synthetic dataset.

    Args:
        dataset_root: Folder of the dataset; scored only if it has `ground_truth/`.
        index: The clip cache's table (`load_clip_cache`), with its track_path column.
        mask: Bool (N, T), True on valid frames, in `index` order.
        spatial: Spatial attention (N, T, h, w), in `index` order.
        temporal: Temporal attention (N, T), in `index` order.
        rows: Rows of `index` to score (e.g. the tested clips); None scores all.

    Returns:
        (one row of scores per video from `siamlib.evaluation.faithfulness.score_videos`, the
        ground truth of those videos), or None when the dataset has no planted ground truth,
        as UvA-NEMO.
    """
    if not has_ground_truth(dataset_root):
        return None
    rows = np.arange(len(index)) if rows is None else np.asarray(rows)
    selected = index.iloc[rows]
    videos = selected["video"].to_numpy().astype(str)
    targets = load_attention_targets(dataset_root, videos, load_sampled_indices(selected))
    scores = score_videos(spatial[rows], temporal[rows], mask[rows], targets.masks,
                          targets.region_names, targets.informativeness, targets.apex, videos)
    return scores, targets
