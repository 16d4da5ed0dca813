"""Load the annotation table of the dataset that the `dataset:` section of params.yaml selects.

The section's `name` picks the reader:

    synthetic  The synthetic benchmark, which `siamlib.data.synthetic` writes in the UvA-NEMO
               layout: keys `root` and optional `videos_dir` (default "videos").
    uvanemo    The UvA-NEMO Smile Database in its distributed layout, with the same keys.
    manifest   Any videos listed in a manifest CSV file (`siamlib.data.manifest`): key
               `manifest`, the file's path.

Every reader returns the same columns (`siamlib.data.uvanemo.ANNOTATION_COLUMNS`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from siamlib.data.manifest import load_manifest
from siamlib.data.uvanemo import load_annotations

logger = logging.getLogger(__name__)

DATASET_NAMES = ("synthetic", "uvanemo", "manifest")
DEFAULT_VIDEOS_DIR = "videos"


def _require_key(dataset: Mapping[str, Any], key: str, name: str) -> Any:
    if dataset.get(key) is None:
        found = ", ".join(sorted(map(str, dataset))) or "none"
        raise ValueError(
            f"dataset {name!r} needs the key {key!r} in the dataset section of params.yaml. "
            f"Found keys: {found}."
        )
    return dataset[key]


def load_dataset(dataset: Mapping[str, Any]) -> pd.DataFrame:
    """Load the annotation table of the dataset described by params.yaml's `dataset:` section.

    Args:
        dataset: The section as a mapping. `name` is one of DATASET_NAMES. "synthetic" and
            "uvanemo" read `root` and the optional `videos_dir` (relative to `root`, default
            "videos"). "manifest" reads `manifest`, the path of the manifest CSV file.

    Returns:
        DataFrame with the columns video, path, subject, age, gender and smile_type, one row
        per video found on disk (see `load_annotations` and `load_manifest`).

    Raises:
        ValueError: If `name` is missing or unknown, or the key that the named dataset needs
            is missing; also any error of the reader.
        FileNotFoundError: If the reader finds no annotation file or no videos.
    """
    name = dataset.get("name")
    if name not in DATASET_NAMES:
        raise ValueError(
            f"dataset name must be one of {', '.join(DATASET_NAMES)}, got {name!r}"
        )

    if name == "manifest":
        manifest = _require_key(dataset, "manifest", name)
        logger.info("Loading the videos listed in the manifest %s", manifest)
        return load_manifest(manifest)

    root = _require_key(dataset, "root", name)
    videos_dir = dataset.get("videos_dir") or DEFAULT_VIDEOS_DIR
    logger.info("Loading the %s dataset from %s", name, root)
    return load_annotations(root, videos_dir=videos_dir)
