"""Tests for reading params.yaml with a profile (siamlib.params)."""

from pathlib import Path

import pytest

from siamlib.params import load_params, merge_params

ROOT = Path(__file__).resolve().parents[1]


def test_merge_updates_nested_sections_and_replaces_other_values():
    base = {"train": {"epochs": 40, "batch_size": 8}, "run": ["a", "b"], "seed": 0}
    merged = merge_params(base, {"train": {"epochs": 2}, "run": ["c"]})
    assert merged == {"train": {"epochs": 2, "batch_size": 8}, "run": ["c"], "seed": 0}
    assert base["train"]["epochs"] == 40


def test_a_profile_by_name_is_merged_over_the_params():
    params = load_params(ROOT / "params.yaml", "tiny")
    assert params["train"]["epochs"] == 2
    assert params["train"]["learning_rate"] == load_params(ROOT / "params.yaml")["train"][
        "learning_rate"
    ]


def test_an_unknown_profile_lists_the_known_ones():
    with pytest.raises(FileNotFoundError, match="paper.*tiny|tiny.*paper"):
        load_params(ROOT / "params.yaml", "tinny")


def test_a_profile_that_is_not_a_mapping_is_named(tmp_path):
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    profile = tmp_path / "list.yaml"
    profile.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="list.yaml"):
        load_params(tmp_path / "params.yaml", str(profile))
