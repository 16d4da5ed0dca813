"""Tests for choosing the dataset reader from params.yaml's dataset section."""

from pathlib import Path

import pandas as pd
import pytest

from siamlib.data.datasets import DATASET_NAMES, load_dataset
from siamlib.data.uvanemo import ANNOTATION_COLUMNS, FILE_DETAILS_NAME

DETAILS = [
    "001_spontaneous_smile_1.mp4\t1\tfemale\t23\tspontaneous",
    "002_deliberate_smile_1.mp4\t2\tmale\t8\tdeliberate",
]
VIDEOS = ["001_spontaneous_smile_1.mp4", "002_deliberate_smile_1.mp4"]


def write_uvanemo_layout(root: Path, videos_dir: str) -> None:
    (root / FILE_DETAILS_NAME).write_text("\n".join(DETAILS) + "\n")
    (root / videos_dir).mkdir()
    for video in VIDEOS:
        (root / videos_dir / video).write_bytes(b"")


def expected_table(video_folder: Path) -> pd.DataFrame:
    return pd.DataFrame({
        "video": VIDEOS,
        "path": [str(video_folder / video) for video in VIDEOS],
        "subject": [1, 2],
        "age": [23, 8],
        "gender": ["female", "male"],
        "smile_type": ["spontaneous", "posed"],
    })


def test_dataset_names():
    assert DATASET_NAMES == ("synthetic", "uvanemo", "manifest")


@pytest.mark.parametrize("name", ["synthetic", "uvanemo"])
def test_uvanemo_layout_loaded(tmp_path, name):
    write_uvanemo_layout(tmp_path, "clips")
    table = load_dataset({"name": name, "root": str(tmp_path), "videos_dir": "clips"})
    pd.testing.assert_frame_equal(table, expected_table(tmp_path / "clips"))


def test_videos_dir_defaults_to_videos(tmp_path):
    write_uvanemo_layout(tmp_path, "videos")
    table = load_dataset({"name": "uvanemo", "root": tmp_path})
    pd.testing.assert_frame_equal(table, expected_table(tmp_path / "videos"))


def test_manifest_loaded(tmp_path):
    (tmp_path / "videos").mkdir()
    for video in VIDEOS:
        (tmp_path / "videos" / video).write_bytes(b"")
    manifest = tmp_path / "list.csv"
    manifest.write_text(
        "path,subject,age,gender,expression\n"
        f"videos/{VIDEOS[0]},1,23,f,spontaneous\n"
        f"videos/{VIDEOS[1]},2,8,m,posed\n"
    )
    table = load_dataset({"name": "manifest", "manifest": str(manifest), "root": "unused"})
    assert list(table.columns) == ANNOTATION_COLUMNS
    pd.testing.assert_frame_equal(table, expected_table(tmp_path / "videos"))


def test_manifest_key_required():
    with pytest.raises(ValueError) as error:
        load_dataset({"name": "manifest", "root": "data"})
    message = str(error.value)
    assert "dataset 'manifest' needs the key 'manifest'" in message
    assert "Found keys: name, root." in message


def test_root_key_required():
    with pytest.raises(ValueError, match="dataset 'uvanemo' needs the key 'root'"):
        load_dataset({"name": "uvanemo", "root": None})


@pytest.mark.parametrize("name", ["UvA-NEMO", None, ""])
def test_unknown_name_lists_valid(name):
    with pytest.raises(ValueError) as error:
        load_dataset({"name": name, "root": "data"})
    assert str(error.value) == (
        f"dataset name must be one of synthetic, uvanemo, manifest, got {name!r}"
    )


def test_missing_details_propagates(tmp_path):
    with pytest.raises(FileNotFoundError, match=FILE_DETAILS_NAME):
        load_dataset({"name": "synthetic", "root": tmp_path, "videos_dir": "videos"})
