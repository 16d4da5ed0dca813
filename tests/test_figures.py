"""Report figures: dataset label in titles, attention drawn the right way round."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from siamlib.evaluation import figures  # noqa: E402


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
    for column in ("age_group", "gender", "smile_type"):
        figure = figures.mae_by_group(predictions, column, "synthetic benchmark")
        assert "synthetic benchmark" in figure.axes[0].get_title()
        figures.save_figure(figure, tmp_path / f"{column}.png")
        assert (tmp_path / f"{column}.png").stat().st_size > 0
    figure = figures.predicted_vs_true(predictions, "synthetic benchmark")
    assert "synthetic benchmark" in figure._suptitle.get_text()
    assert len(figure.axes) == 2


def test_spatial_attention_overlay_orientation():
    # A 2x3 map over a 20x30 face: the overlay must be upsampled to (H, W) = (20, 30).
    frame = np.zeros((20, 30, 3), dtype=np.uint8)
    attention = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    figure = figures.spatial_attention_example(frame, attention, "v1", "synthetic benchmark")
    overlay = figure.axes[2].images[-1].get_array()  # axes: face, map, overlay, colour bar
    assert overlay.shape == (20, 30)
    # The top-right cell of the map stays in the top-right of the face.
    assert overlay[0, 29] > overlay[19, 0]
    assert overlay[0, 29] > overlay[0, 0]


def test_temporal_attention_skips_padding():
    frames = np.zeros((5, 8, 8, 3), dtype=np.uint8)
    weights = np.array([0.2, 0.5, 0.3, 0.0, 0.0])
    valid = np.array([True, True, True, False, False])
    figure = figures.temporal_attention_example(
        frames, weights, valid, "v1", "synthetic benchmark", smile_signal=np.arange(5.0)
    )
    bars = [patch.get_height() for patch in figure.axes[3].patches]
    assert bars == [0.2, 0.5, 0.3]
