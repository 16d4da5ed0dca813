"""Faithfulness scores of attention to planted age cues, and the two figures that show them."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from siamlib.evaluation import attention_figures, faithfulness  # noqa: E402
from siamlib.evaluation.faithfulness import (  # noqa: E402
    PLANTED_REGIONS,
    apex_share_ratio,
    resample_mask,
    score_videos,
    spatial_faithfulness,
    summarise_faithfulness,
    temporal_correlation,
)


def block_mask(size: int, rows: slice, columns: slice) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[rows, columns] = 1
    return mask


# resample_mask


def test_resample_mask_divisible_size():
    mask = block_mask(64, slice(0, 16), slice(0, 8))
    coverage = resample_mask(mask, 8)
    assert coverage.shape == (8, 8)
    assert coverage[0, 0] == 1.0
    assert coverage[1, 0] == 1.0
    assert coverage[2, 0] == 0.0
    assert coverage[0, 1] == 0.0


def test_resample_mask_preserves_mean_coverage():
    rng = np.random.default_rng(0)
    for size, grid in ((64, (8, 8)), (50, (8, 8)), (37, (5, 7)), (6, 8)):
        mask = (rng.random((size, size)) > 0.7).astype(np.uint8)
        coverage = resample_mask(mask, grid)
        assert coverage.shape == ((grid, grid) if isinstance(grid, int) else grid)
        assert coverage.mean() == pytest.approx(mask.mean(), abs=1e-12)
        assert coverage.min() >= 0.0
        assert coverage.max() <= 1.0


def test_resample_mask_non_divisible_partial_cell():
    # 10 pixels onto 4 cells: each cell is 2.5 pixels wide, so pixel 2 is split between
    # cells 0 and 1.
    mask = np.zeros((10, 10))
    mask[:, 2] = 1.0
    coverage = resample_mask(mask, 4)
    assert coverage[0, 0] == pytest.approx(0.5 / 2.5)
    assert coverage[0, 1] == pytest.approx(0.5 / 2.5)
    assert coverage[0, 2] == 0.0


def test_resample_mask_rejects_invalid_input():
    with pytest.raises(ValueError, match="2-D"):
        resample_mask(np.zeros(5), 4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        resample_mask(np.full((4, 4), 255, dtype=np.uint8), 2)
    with pytest.raises(ValueError, match="positive"):
        resample_mask(np.zeros((4, 4)), 0)


# spatial_faithfulness


def test_spatial_uniform_attention_is_chance():
    mask = resample_mask(block_mask(64, slice(8, 24), slice(0, 40)), 8)
    attention = np.full((3, 8, 8), 0.7)
    assert np.allclose(spatial_faithfulness(attention, mask), 1.0)


def test_spatial_attention_equal_to_mask_is_maximum():
    mask = block_mask(8, slice(0, 2), slice(2, 6)).astype(float)
    best = spatial_faithfulness(mask, mask)
    assert best == pytest.approx(1.0 / mask.mean())

    rng = np.random.default_rng(1)
    random_attention = rng.random((500, 8, 8)) ** 4
    scores = spatial_faithfulness(random_attention, mask)
    assert scores.shape == (500,)
    assert np.all(scores <= best + 1e-12)


def test_spatial_hand_computed_case():
    # 2x2 grid, the region covers the top-left cell fully and the top-right cell by half.
    mask = np.array([[1.0, 0.5], [0.0, 0.0]])
    attention = np.array([[2.0, 2.0], [1.0, 3.0]])
    # Inside share (2*1 + 2*0.5) / 8 = 0.375, mean coverage 1.5 / 4 = 0.375.
    assert spatial_faithfulness(attention, mask) == pytest.approx(1.0)
    attention = np.array([[4.0, 0.0], [0.0, 0.0]])
    assert spatial_faithfulness(attention, mask) == pytest.approx(1.0 / 0.375)


def test_spatial_undefined_cases_are_nan():
    mask = np.array([[1.0, 0.0], [0.0, 0.0]])
    attention = np.stack([np.zeros((2, 2)), np.ones((2, 2))])
    scores = spatial_faithfulness(attention, mask)
    assert math.isnan(scores[0])
    assert scores[1] == pytest.approx(1.0)
    assert np.all(np.isnan(spatial_faithfulness(attention, np.zeros((2, 2)))))


def test_spatial_rejects_invalid_input():
    mask = np.ones((2, 2))
    with pytest.raises(ValueError, match="non-negative"):
        spatial_faithfulness(np.array([[1.0, -1.0], [0.0, 0.0]]), mask)
    with pytest.raises(ValueError, match="does not match"):
        spatial_faithfulness(np.ones((3, 3)), mask)
    with pytest.raises(ValueError, match="finite"):
        spatial_faithfulness(np.array([[np.nan, 1.0], [0.0, 0.0]]), mask)


# temporal_correlation


def test_correlation_known_answers():
    valid = np.ones(6, dtype=bool)
    informativeness = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    weights = informativeness / informativeness.sum()
    assert temporal_correlation(weights, informativeness, valid) == pytest.approx(1.0)
    assert temporal_correlation(weights[::-1], informativeness, valid) == pytest.approx(-1.0)
    assert temporal_correlation(np.array([1.0, 0, 1, 0, 1, 0]), np.array([0.0, 0, 0, 1, 1, 1]),
                                valid) == pytest.approx(-1.0 / 3.0)


def test_correlation_constant_is_nan():
    valid = np.ones(5, dtype=bool)
    informativeness = np.linspace(0, 1, 5)
    assert math.isnan(temporal_correlation(np.full(5, 0.2), informativeness, valid))
    assert math.isnan(temporal_correlation(informativeness, np.full(5, 0.5), valid))
    # Softmax of equal logits in float32: uniform up to rounding.
    uniform_float32 = np.full(5, np.float32(1.0) / np.float32(5.0), dtype=np.float32)
    uniform_float32[2] = np.nextafter(uniform_float32[2], np.float32(1.0))
    assert math.isnan(temporal_correlation(uniform_float32, informativeness, valid))


def test_correlation_needs_three_valid_frames():
    valid = np.array([True, True, False, False])
    assert math.isnan(temporal_correlation(np.array([0.1, 0.9, 0, 0]), np.arange(4.0), valid))


def test_correlation_ignores_invalid_frames():
    valid = np.array([True, True, True, True, False, False])
    informativeness = np.array([0.1, 0.5, 0.9, 0.3, 0.0, 0.0])
    weights = np.array([0.1, 0.3, 0.4, 0.2, 0.0, 0.0])
    reference = temporal_correlation(weights, informativeness, valid)
    changed_weights = weights.copy()
    changed_weights[4:] = [5.0, np.nan]
    changed_informativeness = informativeness.copy()
    changed_informativeness[4:] = [np.nan, 7.0]
    assert temporal_correlation(changed_weights, changed_informativeness, valid) == reference


def test_correlation_rejects_invalid_input():
    with pytest.raises(ValueError, match="same length"):
        temporal_correlation(np.ones(4), np.ones(3), np.ones(4, dtype=bool))
    with pytest.raises(ValueError, match="bool"):
        temporal_correlation(np.ones(4), np.ones(4), np.ones(4))


# apex_share_ratio


def test_apex_ratio_uniform_weights_is_chance():
    apex = np.array([False, False, True, True, False, False, False, False])
    valid = np.array([True] * 6 + [False] * 2)
    weights = np.where(valid, 1.0 / 6.0, 0.0)
    assert apex_share_ratio(weights, apex, valid) == pytest.approx(1.0)


def test_apex_ratio_known_answers():
    apex = np.array([False, True, False, False])
    valid = np.ones(4, dtype=bool)
    # All weight on the single apex frame out of 4: the maximum, 4.
    assert apex_share_ratio(np.array([0.0, 1.0, 0.0, 0.0]), apex, valid) == pytest.approx(4.0)
    # Half the weight on a quarter of the frames: 2.
    assert apex_share_ratio(np.array([0.2, 0.5, 0.2, 0.1]), apex, valid) == pytest.approx(2.0)


def test_apex_ratio_ignores_invalid_frames():
    apex = np.array([False, True, True, False, True])
    valid = np.array([True, True, True, True, False])
    weights = np.array([0.1, 0.4, 0.3, 0.2, 0.0])
    reference = apex_share_ratio(weights, apex, valid)
    changed = weights.copy()
    changed[4] = 9.0
    assert apex_share_ratio(changed, apex, valid) == reference
    # Weights renormalised over the valid frames give the same ratio.
    assert apex_share_ratio(weights * 3.0, apex, valid) == pytest.approx(reference)


def test_apex_ratio_undefined_cases_are_nan():
    valid = np.array([True, True, True, False])
    weights = np.array([0.2, 0.3, 0.5, 0.0])
    no_valid_apex = np.array([False, False, False, True])
    all_valid_apex = np.array([True, True, True, False])
    assert math.isnan(apex_share_ratio(weights, no_valid_apex, valid))
    assert math.isnan(apex_share_ratio(weights, all_valid_apex, valid))
    assert math.isnan(apex_share_ratio(np.zeros(4), np.array([True, False, False, False]), valid))


def test_apex_ratio_rejects_negative_weights():
    with pytest.raises(ValueError, match="non-negative"):
        apex_share_ratio(
            np.array([0.5, -0.1, 0.6]), np.array([True, False, False]), np.ones(3, dtype=bool)
        )


# score_videos and summarise_faithfulness


def make_videos():
    """Two videos, 4 frames on a 4x4 grid, masks at 8x8, the second video with 3 valid frames."""
    region_names = np.array(["crows_feet", "forehead_lines", "mouth"])
    masks = np.zeros((2, 3, 8, 8), dtype=np.uint8)
    masks[:, 0, 0:2, 0:2] = 1  # crows_feet: top-left cell of the 4x4 grid
    masks[:, 1, 0:2, 4:8] = 1  # forehead_lines: two top-right cells
    masks[:, 2, 6:8, :] = 1  # mouth: bottom row
    spatial = np.ones((2, 4, 4, 4))
    spatial[0, :, 0, 0] = 13.0  # video 0 looks at the crows' feet cell: 13 / 28 of the mass
    spatial[1, 3] = 0.0  # padded frame of video 1
    temporal = np.array([[0.1, 0.2, 0.3, 0.4], [1 / 3, 1 / 3, 1 / 3, 0.0]])
    valid = np.array([[True] * 4, [True, True, True, False]])
    informativeness = np.array([[0.0, 0.3, 0.6, 1.0], [0.0, 1.0, 0.0, 0.0]])
    apex = np.array([[False, False, False, True], [False, True, False, False]])
    videos = np.array(["a", "b"])
    return spatial, temporal, valid, masks, region_names, informativeness, apex, videos


def test_score_videos_columns():
    table = score_videos(*make_videos())
    assert list(table.columns) == [
        "video", "spatial_crows_feet", "spatial_forehead_lines", "spatial_mouth",
        "spatial_planted", "temporal_correlation", "apex_share_ratio",
    ]
    assert list(table["video"]) == ["a", "b"]


def test_score_videos_small_example():
    table = score_videos(*make_videos()).set_index("video")

    # Video a: the crows' feet cell gets 13 of 28 units on a 1/16 region.
    assert table.loc["a", "spatial_crows_feet"] == pytest.approx((13 / 28) * 16)
    assert table.loc["a", "spatial_forehead_lines"] == pytest.approx((2 / 28) * 8)
    # Planted union: crows' feet and forehead lines, 3 of 16 cells.
    assert table.loc["a", "spatial_planted"] == pytest.approx((15 / 28) * 16 / 3)
    assert table.loc["a", "temporal_correlation"] == pytest.approx(
        np.corrcoef([0.1, 0.2, 0.3, 0.4], [0.0, 0.3, 0.6, 1.0])[0, 1]
    )
    assert table.loc["a", "apex_share_ratio"] == pytest.approx(0.4 / 0.25)

    # Video b: uniform attention on the valid frames, and its zero padded map is skipped.
    spatial_columns = [column for column in table.columns if column.startswith("spatial_")]
    assert len(spatial_columns) == 4
    for column in spatial_columns:
        assert table.loc["b", column] == pytest.approx(1.0)
    assert math.isnan(table.loc["b", "temporal_correlation"])
    assert table.loc["b", "apex_share_ratio"] == pytest.approx(1.0)


def test_score_videos_without_planted_regions():
    spatial, temporal, valid, masks, _names, informativeness, apex, videos = make_videos()
    names = np.array(["eyes", "brows", "mouth"])
    table = score_videos(spatial, temporal, valid, masks, names, informativeness, apex, videos)
    assert table["spatial_planted"].isna().all()
    assert not set(names) & set(PLANTED_REGIONS)


def test_score_videos_rejects_mismatched_shapes():
    spatial, temporal, valid, masks, names, informativeness, apex, videos = make_videos()
    with pytest.raises(ValueError, match="temporal"):
        score_videos(spatial, temporal[:, :3], valid, masks, names, informativeness, apex, videos)
    with pytest.raises(ValueError, match="masks"):
        score_videos(spatial, temporal, valid, masks[:, :2], names, informativeness, apex, videos)
    with pytest.raises(ValueError, match="unique"):
        score_videos(spatial, temporal, valid, masks, np.array(["mouth", "mouth", "eyes"]),
                     informativeness, apex, videos)


def test_summarise_values_and_all_nan():
    table = score_videos(*make_videos())
    summary = summarise_faithfulness(table)
    assert set(summary) == set(table.columns) - {"video"}
    assert summary["apex_share_ratio"]["mean"] == pytest.approx((1.6 + 1.0) / 2)
    assert summary["apex_share_ratio"]["sd"] == pytest.approx(np.std([1.6, 1.0], ddof=1), abs=1e-4)
    assert summary["apex_share_ratio"]["n"] == 2
    # Video b's correlation is NaN, so one value is left and its SD is undefined.
    assert summary["temporal_correlation"]["n"] == 1
    assert summary["temporal_correlation"]["sd"] is None

    table["spatial_mouth"] = np.nan
    summary = summarise_faithfulness(table)
    assert summary["spatial_mouth"] == {"mean": None, "sd": None, "n": 0}
    assert isinstance(summary["spatial_crows_feet"]["mean"], float)


def test_planted_regions_constant():
    assert faithfulness.PLANTED_REGIONS == ("crows_feet", "forehead_lines", "nasolabial_folds")


# Figures


def test_attention_over_face_outlines_planted_regions():
    face = np.full((32, 32, 3), 128, dtype=np.uint8)
    attention = np.zeros((4, 4))
    attention[0, 3] = 1.0
    masks = np.zeros((3, 16, 16), dtype=np.uint8)
    masks[0, 0:4, 0:4] = 1  # crows_feet, top-left
    masks[1, 12:16, 12:16] = 1  # mouth, not planted
    masks[2, 0:4, 12:16] = 1  # forehead_lines, top-right
    names = ["crows_feet", "mouth", "forehead_lines"]
    figure = attention_figures.attention_over_face(face, attention, masks, names, "synthetic benchmark")
    axes = figure.axes[0]
    assert "synthetic benchmark" in axes.get_title()

    overlay = axes.images[-1].get_array()
    assert overlay.shape == (32, 32)
    assert overlay[0, 31] > overlay[31, 0]

    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["crows feet", "forehead lines"]
    # The crows' feet outline lies within the top-left 8 x 8 pixels of the 32 x 32 face.
    vertices = axes.collections[0].get_paths()[0].vertices
    assert vertices[:, 0].max() <= 8.5
    assert vertices[:, 1].max() <= 8.5


def test_attention_over_face_accepts_float_face():
    face = np.full((16, 16, 3), 200.0)
    masks = np.zeros((1, 8, 8))
    figure = attention_figures.attention_over_face(face, np.ones((2, 2)), masks, ["eyes"], "UvA-NEMO")
    assert figure.axes[0].images[0].get_array().max() <= 1.0
    assert figure.axes[0].get_legend() is None


def test_attention_over_smile_scales_weights():
    smile = np.array([0.0, 0.2, 0.9, 1.0, 0.3, 0.0])
    temporal = np.array([0.1, 0.1, 0.3, 0.3, 0.2, 0.0])
    informativeness = np.array([0.0, 0.1, 0.9, 1.0, 0.2, 0.0])
    apex = np.array([False, False, True, True, False, False])
    valid = np.array([True] * 5 + [False])
    figure = attention_figures.attention_over_smile(
        smile, temporal, informativeness, apex, "synthetic benchmark", valid=valid
    )
    axes, twin = figure.axes
    assert "synthetic benchmark" in axes.get_title()
    weight_line = twin.get_lines()[0]
    assert np.allclose(weight_line.get_ydata(), temporal[:5] * 5)
    assert len(axes.patches) == 2  # one shaded span per apex frame

    figure = attention_figures.attention_over_smile(
        smile, temporal, informativeness, apex, "synthetic benchmark"
    )
    assert len(figure.axes[1].get_lines()[0].get_ydata()) == 6


def test_attention_over_smile_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one length"):
        attention_figures.attention_over_smile(
            np.ones(4), np.ones(3), np.ones(4), np.zeros(4, dtype=bool), "synthetic benchmark"
        )
