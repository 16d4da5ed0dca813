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


def test_profile_name_merges_over_params():
    params = load_params(ROOT / "params.yaml", "tiny")
    assert params["train"]["epochs"] == 2
    assert params["train"]["learning_rate"] == load_params(ROOT / "params.yaml")["train"][
        "learning_rate"
    ]


def test_unknown_profile_lists_known_ones():
    with pytest.raises(FileNotFoundError, match="paper.*tiny|tiny.*paper"):
        load_params(ROOT / "params.yaml", "tinny")


def test_non_mapping_profile_is_named(tmp_path):
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    profile = tmp_path / "list.yaml"
    profile.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="list.yaml"):
        load_params(tmp_path / "params.yaml", str(profile))


def test_merge_copies_nested_values():
    base = {"seed": 0, "train": {"epochs": 40, "device": "auto"},
            "ablation": {"run": ["a", "b", "c"]}}
    overrides = {"train": {"epochs": 2}, "ablation": {"run": ["a"]}, "new": {"x": 1}}
    merged = merge_params(base, overrides)
    assert merged == {"seed": 0, "train": {"epochs": 2, "device": "auto"},
                      "ablation": {"run": ["a"]}, "new": {"x": 1}}
    assert base["train"]["epochs"] == 40  # inputs unchanged
    assert base["ablation"]["run"] == ["a", "b", "c"]
    merged["new"]["x"] = 2
    assert overrides["new"]["x"] == 1


def test_merge_replaces_across_types():
    assert merge_params({"a": {"b": 1}}, {"a": 3}) == {"a": 3}
    assert merge_params({"a": 3}, {"a": {"b": 1}}) == {"a": {"b": 1}}
