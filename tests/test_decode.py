"""Tests for siamlib.video.decode: H.264 writing, decoding and the errors for bad files."""

from __future__ import annotations

import av
import numpy as np
import pytest

from siamlib.video.decode import VideoReader, VideoReadError, read_video, write_video

# Distinct sizes: N=7 frames, H=34 rows, W=48 columns.
NUM_FRAMES, HEIGHT, WIDTH = 7, 34, 48


def make_frames() -> np.ndarray:
    """Build frames of flat colour blocks on 2-pixel boundaries that change per frame."""
    frames = np.zeros((NUM_FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for index in range(NUM_FRAMES):
        frames[index, :18, :, 0] = 200
        frames[index, 18:, :24, 1] = 150
        frames[index, :, 24:, 2] = 40 + 25 * index
    return frames


@pytest.fixture()
def video_path(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, make_frames(), fps=12.5)
    return path


def test_roundtrip_frame_count(video_path):
    frames, fps = read_video(video_path)
    assert frames.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
    assert frames.dtype == np.uint8
    assert fps == pytest.approx(12.5)


def test_roundtrip_pixel_values(video_path):
    frames, _ = read_video(video_path)
    expected = make_frames().astype(np.int16)
    error = np.abs(frames.astype(np.int16) - expected)
    assert error.mean() < 3.0
    # Inside the blocks, away from colour edges that yuv420p blurs, values stay close.
    interior = error[:, 4:14, 4:20]
    assert interior.max() <= 6
    # The blue block brightens by 25 per frame, so the frame order must survive.
    blue = frames[:, 10, 36, 2].astype(np.int16)
    assert np.all(np.abs(blue - (40 + 25 * np.arange(NUM_FRAMES))) <= 6)


def test_write_deterministic_bytes(tmp_path):
    first, second = tmp_path / "first.mp4", tmp_path / "second.mp4"
    write_video(first, make_frames(), fps=25)
    write_video(second, make_frames(), fps=25)
    assert first.read_bytes() == second.read_bytes()


def test_reader_streams_frames(video_path):
    with VideoReader(video_path) as reader:
        shapes = [frame.shape for frame in reader]
        assert reader.num_decoded == NUM_FRAMES
    assert shapes == [(HEIGHT, WIDTH, 3)] * NUM_FRAMES


def test_reader_selects_frames(video_path):
    all_frames, _ = read_video(video_path)
    with VideoReader(video_path) as reader:
        selected = list(reader.iter_selected({1, 4}))
        assert reader.num_decoded == NUM_FRAMES
    assert [index for index, _ in selected] == [1, 4]
    np.testing.assert_array_equal(selected[0][1], all_frames[1])
    np.testing.assert_array_equal(selected[1][1], all_frames[4])


def test_read_non_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are notes, not a video\n" * 20)
    with pytest.raises(VideoReadError, match="notes.mp4") as caught:
        read_video(path)
    assert "FFmpeg failed to open it" in caught.value.reason
    assert caught.value.path == path


def test_read_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoReadError, match=r"empty\.mp4: file is empty"):
        read_video(path)


def test_read_missing_file(tmp_path):
    with pytest.raises(VideoReadError, match=r"absent\.mp4: file not found"):
        read_video(tmp_path / "absent.mp4")


def test_read_truncated_file(tmp_path, video_path):
    path = tmp_path / "truncated.mp4"
    path.write_bytes(video_path.read_bytes()[:300])
    with pytest.raises(VideoReadError, match="truncated.mp4"):
        read_video(path)


def test_read_zero_frames(tmp_path):
    # AVI keeps a video stream in the header even when no packet was written.
    path = tmp_path / "no_frames.avi"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
    with pytest.raises(VideoReadError, match=r"no_frames\.avi: no frame could be decoded"):
        read_video(path)


@pytest.mark.parametrize(
    ("frames", "fps", "crf", "message"),
    [
        (np.zeros((2, 34, 48, 3), np.float32), 25, 18, "uint8"),
        (np.zeros((2, 33, 48, 3), np.uint8), 25, 18, "even"),
        (np.zeros((0, 34, 48, 3), np.uint8), 25, 18, "N >= 1"),
        (np.zeros((2, 34, 48, 3), np.uint8), 0, 18, "fps"),
        (np.zeros((2, 34, 48, 3), np.uint8), 25, 52, "crf"),
    ],
)
def test_write_rejects_invalid(tmp_path, frames, fps, crf, message):
    with pytest.raises(ValueError, match=message):
        write_video(tmp_path / "bad.mp4", frames, fps, crf=crf)
