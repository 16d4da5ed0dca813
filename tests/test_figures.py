"""Report figures: dataset label in titles, attention drawn the right way round."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from siamlib.evaluation import attention_figures, figures  # noqa: E402
from siamlib.evaluation.statistics import BootstrapSettings  # noqa: E402
from siamlib.evaluation.summary import GROUPINGS, evaluate  # noqa: E402


def make_predictions() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for method in ("SIAM", "SVR"):
        for video in range(12):
            age = int(rng.integers(8, 77))
            rows.append({
                "method": method, "video": f"v{video}", "subject": video // 2, "fold": video % 3,
                "age": age, "predicted_age": age + float(rng.normal(0, 4)),
                "gender": ("female", "male")[video % 2],
                "smile_type": ("posed", "spontaneous")[(video // 2) % 2],
            })
    return pd.DataFrame(rows)


def test_group_figures_name_dataset(tmp_path):
    predictions = make_predictions()
    result = evaluate(predictions, settings=BootstrapSettings(num_resamples=50))
    for grouping in GROUPINGS:
        figure = figures.mae_by_group(result.groups, grouping, "synthetic benchmark")
        assert "synthetic benchmark" in figure.axes[0].get_title()
        figures.save_figure(figure, tmp_path / f"{grouping}.png")
        assert (tmp_path / f"{grouping}.png").stat().st_size > 0
    figure = figures.predicted_vs_true(predictions, "synthetic benchmark")
    assert "synthetic benchmark" in figure._suptitle.get_text()
    assert len(figure.axes) == 2
    figure = figures.error_vs_age(predictions, "synthetic benchmark")
    assert "synthetic benchmark" in figure._suptitle.get_text()
    figure = figures.cumulative_score(result.cumulative, "synthetic benchmark")
    assert "synthetic benchmark" in figure.axes[0].get_title()


def test_group_bars_show_intervals_and_mark_small_groups():
    predictions = make_predictions()  # 6 subjects: every group has fewer than 10
    result = evaluate(predictions, settings=BootstrapSettings(num_resamples=50))
    figure = figures.mae_by_group(result.groups, "gender", "synthetic benchmark")
    axes = figure.axes[0]
    cells = result.groups[result.groups["grouping"] == "gender"].set_index(["method", "group"])
    # Bars come method by method (legend order), one per gender in the table's order, each at
    # its cell's MAE, with an error bar from mae_low to mae_high.
    methods = [text.get_text() for text in axes.get_legend().get_texts()]
    assert methods == ["SIAM", "SVR"]
    expected = [(method, group) for method in methods for group in ("female", "male")]
    assert len(axes.patches) == len(expected)
    segments = [segment for collection in axes.collections for segment in collection.get_segments()]
    for patch, segment, key in zip(axes.patches, segments, expected):
        assert patch.get_height() == pytest.approx(cells.loc[key, "mae"])
        assert sorted(segment[:, 1]) == pytest.approx([cells.loc[key, "mae_low"], cells.loc[key, "mae_high"]])
    labels = [text.get_text() for text in axes.get_xticklabels()]
    assert all("†" in label for label in labels)
    female = predictions[predictions["gender"] == "female"]
    assert labels[0].startswith("female †")
    assert f"{female['subject'].nunique()} subj." in labels[0]


def test_cumulative_score_draws_every_method():
    result = evaluate(make_predictions(), settings=BootstrapSettings(num_resamples=50))
    figure = figures.cumulative_score(result.cumulative, "synthetic benchmark")
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["SIAM", "SVR"]
    siam = result.cumulative[result.cumulative["method"] == "SIAM"]
    np.testing.assert_allclose(lines[0].get_ydata(), 100 * siam["cs"].to_numpy())


def test_spatial_attention_overlay_orientation():
    # A 2x3 map over a 20x30 face: the overlay must be upsampled to (H, W) = (20, 30).
    frame = np.zeros((20, 30, 3), dtype=np.uint8)
    attention = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    figure = attention_figures.spatial_attention_example(frame, attention, "v1", "synthetic benchmark")
    overlay = figure.axes[2].images[-1].get_array()  # axes: face, map, overlay, colour bar
    assert overlay.shape == (20, 30)
    # The top-right cell of the map stays in the top-right of the face.
    assert overlay[0, 29] > overlay[19, 0]
    assert overlay[0, 29] > overlay[0, 0]


def test_temporal_attention_skips_padding():
    frames = np.zeros((5, 8, 8, 3), dtype=np.uint8)
    weights = np.array([0.2, 0.5, 0.3, 0.0, 0.0])
    valid = np.array([True, True, True, False, False])
    figure = attention_figures.temporal_attention_example(
        frames, weights, valid, "v1", "synthetic benchmark", smile_signal=np.arange(5.0)
    )
    bars = [patch.get_height() for patch in figure.axes[3].patches]
    assert bars == [0.2, 0.5, 0.3]


def test_mean_attention_by_group_weights_each_clip_once():
    clips = np.zeros((3, 2, 4, 4, 3), dtype=np.uint8)
    clips[0] = 100
    clips[1, 0] = 200  # its second frame is padding
    clips[2] = 50
    valid = np.array([[True, True], [True, False], [True, True]])
    spatial = np.zeros((3, 2, 2, 2))
    spatial[0] = 1.0
    spatial[1, 0] = 0.5
    spatial[1, 1] = 9.0  # padding, ignored
    faces, maps, names, counts = attention_figures.mean_attention_by_group(
        clips, valid, spatial, ["a", "a", "b"], ["a", "b", "c"]
    )
    assert names == ["a", "b"]
    assert counts == [2, 1]  # "c" has no clip
    np.testing.assert_allclose(faces[0], 150.0)
    np.testing.assert_allclose(maps[0], 0.75)
    np.testing.assert_allclose(faces[1], 50.0)
    figure = attention_figures.attention_by_age_group(faces, maps, names, "synthetic benchmark")
    assert "synthetic benchmark" in figure._suptitle.get_text()


def test_typical_videos_pick_the_median_error():
    errors = pd.DataFrame({
        "video": ["a", "b", "c", "d", "e"],
        "age_group": pd.Categorical(["20-29", "20-29", "20-29", "8-9", "8-9"], ["8-9", "20-29"], ordered=True),
        "abs_error": [1.0, 5.0, 2.0, 3.0, 4.0],
    })
    # 8-9: median 3.5, d and e tie at 0.5 and d comes first by name; 20-29: median 2.0 is c.
    assert attention_figures.typical_videos(errors) == ["d", "c"]


def test_smile_signal_and_gallery():
    landmarks = np.zeros((4, 68, 2))
    landmarks[:, 54, 0] = [10.0, 11.0, 12.0, 10.0]
    signal = attention_figures.smile_signal(landmarks)
    np.testing.assert_allclose(signal, [0.0, 0.1, 0.2, 0.0])
    figure = attention_figures.temporal_attention_gallery(
        [signal, signal], [np.full(4, 0.25), np.array([0.5, 0.5, 0.0, 0.0])],
        [np.ones(4, bool), np.array([True, True, False, False])], ["v1", "v2"], "synthetic benchmark",
    )
    # Weights times valid frames: 1 is uniform; padded frames are not drawn.
    assert [p.get_height() for p in figure.axes[0].patches] == [1.0] * 4
    assert [p.get_height() for p in figure.axes[1].patches] == [1.0, 1.0]


def test_group_bars_accept_estimate_outside_interval():
    # Rounding can put a constant cell's estimate a few ulp above its percentile interval.
    cells = pd.DataFrame({"method": ["SIAM"], "grouping": ["gender"], "group": ["female"], "mae": [5.705264281009891],
                          "mae_low": [5.705264281009888], "mae_high": [5.70526428100989], "subjects": [3],
                          "videos": [6], "few_subjects": [True]})
    figure = figures.mae_by_group(cells, "gender", "synthetic benchmark")
    assert figure.axes[0].patches[0].get_height() == pytest.approx(5.705264281009891)
