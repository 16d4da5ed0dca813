"""End-to-end tests of real encoded videos through dlib tracking, alignment and the clip cache.

Videos are encoded here: H.264 through PyAV and MPEG-4 Part 2 ("mp4v") through OpenCV, with
faces from the synthetic renderer and from scikit-image's astronaut portrait. Bad inputs must
end in an error that names the file or in a skipped row of the cache index with its reason,
while the other videos of the same build are kept.
"""

from __future__ import annotations

import logging
import re
from fractions import Fraction

import av
import cv2
import numpy as np
import pandas as pd
import pytest
import skimage.data

from siamlib.data.synthetic import SyntheticConfig
from siamlib.data.synthetic.clip import sample_subject, synthesize_clip
from siamlib.landmarks import NOSE_TIP, eye_centres, inter_ocular_distance
from siamlib.video.align import canonical_eye_positions
from siamlib.video.clips import build_clip_cache, load_clip_cache
from siamlib.video.decode import VideoReader, VideoReadError, write_video
from siamlib.video.extract import ClipExtractionError, PreprocessSettings, extract_clip

FPS = 25
CROP = 160
FACE_TOP, FACE_LEFT = 40, 140
"""Top-left corner of a CROP x CROP window of scikit-image's astronaut around her face."""

CLIP_FRAMES, CLIP_SIZE = 8, 48
BUILD_SETTINGS = PreprocessSettings(num_frames=CLIP_FRAMES, image_size=CLIP_SIZE,
                                    landmarks="dlib")
GOOD_FRAMES = 10
"""Frames of the synthetic video that every cache build below keeps next to a bad one."""


# Frames and encoders.

def astronaut_crop() -> np.ndarray:
    """Return the CROP x CROP window around the astronaut's face, uint8 (CROP, CROP, 3)."""
    image = skimage.data.astronaut()  # (512, 512, 3)
    return np.ascontiguousarray(image[FACE_TOP:FACE_TOP + CROP, FACE_LEFT:FACE_LEFT + CROP])


def motion_matrix(index: int, num_frames: int) -> np.ndarray:
    """Map astronaut image pixels to frame pixels of frame `index` of the moving-face video.

    Over the video the face turns from -1.5 to +1.5 degrees about the frame centre, grows
    from scale 1.00 to 1.04 and moves from (-3, +2) to (+3, -2) pixels, linearly in time.

    Returns:
        float64 array (3, 3), a homogeneous affine matrix.
    """
    fraction = index / (num_frames - 1)
    angle = -1.5 + 3.0 * fraction
    scale = 1.0 + 0.04 * fraction
    shift = np.array([-3.0 + 6.0 * fraction, 2.0 - 4.0 * fraction])
    rotation = cv2.getRotationMatrix2D((CROP / 2, CROP / 2), angle, scale)  # (2, 3)
    to_crop = np.array([[1.0, 0.0, -FACE_LEFT], [0.0, 1.0, -FACE_TOP], [0.0, 0.0, 1.0]])
    matrix = np.vstack([rotation, [0.0, 0.0, 1.0]]) @ to_crop
    matrix[:2, 2] += shift
    return matrix


def apply_matrix(matrix: np.ndarray, point: np.ndarray) -> np.ndarray:
    return matrix[:2, :2] @ point + matrix[:2, 2]


def tilted_astronaut(angle: float, num_frames: int) -> np.ndarray:
    """Rotate the portrait by `angle` degrees counter-clockwise about the face centre.

    The face then moves right by one pixel per frame.

    Returns:
        uint8 array (N, CROP, CROP, 3).
    """
    image = skimage.data.astronaut()
    centre = (FACE_LEFT + CROP / 2, FACE_TOP + CROP / 2)
    rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
    rotated = cv2.warpAffine(image, rotation, (512, 512), borderMode=cv2.BORDER_REFLECT)
    frames = [rotated[FACE_TOP:FACE_TOP + CROP, FACE_LEFT - i:FACE_LEFT - i + CROP]
              for i in range(num_frames)]
    return np.ascontiguousarray(np.stack(frames))


def write_mp4v(path, frames: np.ndarray) -> None:
    """Encode RGB frames as MPEG-4 Part 2 in MP4 with OpenCV's VideoWriter."""
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
    assert writer.isOpened(), "OpenCV cannot write mp4v video in this build"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def write_with_pyav(
    path,
    frames: np.ndarray,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    times_ms: list[int] | None = None,
    container_options: dict[str, str] | None = None,
) -> None:
    """Encode frames, RGB (N, H, W, 3) or gray (N, H, W), with the stream settings PyAV allows.

    Args:
        rotation: Counter-clockwise display rotation in degrees stored in the container, so a
            player turns the stored frames by it.
        times_ms: Presentation time of each frame in milliseconds, for variable frame rate.
        container_options: Muxer options, e.g. {"movflags": "faststart"}.
    """
    with av.open(str(path), mode="w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = pix_fmt
        if codec == "libx264":
            stream.options = {"threads": "1"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if times_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for index, image in enumerate(frames):
            source_format = "gray" if image.ndim == 2 else "rgb24"
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=source_format)
            if times_ms is not None:
                frame.pts = times_ms[index]
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def mp4_boxes(data: bytes) -> dict[str, tuple[int, int]]:
    """Return the (offset, size) of each top-level box of an MP4 file, by box type."""
    boxes = {}
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], "big")
        boxes[data[offset + 4:offset + 8].decode("ascii")] = (offset, size)
        if size < 8:
            break
        offset += size
    return boxes


# Cache builds.

def build_with_good_video(cache_dir, good_video, other_video, settings=BUILD_SETTINGS):
    """Build a cache of the good synthetic video and one other video and read its index.csv."""
    annotations = pd.DataFrame({
        "video": ["good.mp4", other_video.name],
        "path": [str(good_video), str(other_video)],
    })
    build_clip_cache(annotations, None, cache_dir, settings, progress=False, workers=1)
    index = pd.read_csv(cache_dir / "index.csv")
    index["reason"] = index["reason"].astype(object).fillna("")  # empty cells read as NaN
    return index


def assert_good_video_kept(cache_dir, index, num_kept=1):
    assert index.loc[0, "status"] == "ok"
    assert index.loc[0, "reason"] == ""
    assert index.loc[0, "row"] == 0
    assert index.loc[0, "num_decoded"] == GOOD_FRAMES
    clips, mask, kept_index = load_clip_cache(cache_dir)
    assert clips.shape == (num_kept, CLIP_FRAMES, CLIP_SIZE, CLIP_SIZE, 3)
    assert kept_index.loc[0, "video"] == "good.mp4"
    assert mask[0].all()
    assert clips[0].reshape(CLIP_FRAMES, -1).max(axis=1).min() > 0, "a kept frame is blank"
    assert (cache_dir / "tracks" / "good.npz").is_file()


def assert_skipped_in_build(cache_dir, good_video, bad_video, reason) -> pd.DataFrame:
    """Build a cache of the good and the bad video, and check that only the bad one is skipped."""
    index = build_with_good_video(cache_dir, good_video, bad_video)
    assert index.loc[1, "status"] == "skipped"
    assert index.loc[1, "reason"] == reason
    assert index.loc[1, "row"] == -1
    assert not (cache_dir / "tracks" / f"{bad_video.stem}.npz").exists()
    assert_good_video_kept(cache_dir, index)
    return index


def extraction_error(error_type, video, settings=BUILD_SETTINGS):
    """Run extract_clip, check that it raises error_type naming the video, and return the error."""
    with pytest.raises(error_type) as caught:
        extract_clip(video, settings)
    assert str(video) in str(caught.value)
    assert caught.value.path == video
    return caught.value


# Shared videos, encoded once per module.

@pytest.fixture(scope="module")
def videos_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def synthetic_frames():
    """25 frames of one synthetic 128 x 128 smile video, uint8 (25, 128, 128, 3)."""
    config = SyntheticConfig(min_duration_s=1.0, max_duration_s=1.0)
    subject = sample_subject(1, 40, "female", config, seed=0)
    clip = synthesize_clip("001_x.mp4", subject, "spontaneous", 1, config, seed=0)
    return np.stack(list(clip.frames()))


@pytest.fixture(scope="module")
def good_video(videos_dir, synthetic_frames):
    path = videos_dir / "good.mp4"
    write_video(path, synthetic_frames[:GOOD_FRAMES], FPS)
    return path


MOTION_FRAMES = 12
MOTION_SETTINGS = PreprocessSettings(num_frames=8, image_size=64, landmarks="dlib")


@pytest.fixture(scope="module")
def motion():
    """The astronaut under known affine motion: frames (N, CROP, CROP, 3) and matrices (N, 3, 3)."""
    image = skimage.data.astronaut()
    matrices = np.stack([motion_matrix(i, MOTION_FRAMES) for i in range(MOTION_FRAMES)])
    frames = np.stack([
        cv2.warpAffine(image, matrix[:2], (CROP, CROP), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT)
        for matrix in matrices
    ])
    return frames, matrices


@pytest.fixture(scope="module")
def motion_videos(videos_dir, motion):
    frames, _ = motion
    paths = {"h264": videos_dir / "motion_h264.mp4", "mp4v": videos_dir / "motion_mp4v.mp4"}
    write_video(paths["h264"], frames, FPS)
    write_mp4v(paths["mp4v"], frames)
    return paths


@pytest.fixture(scope="module")
def motion_clips(motion_videos):
    return {codec: extract_clip(path, MOTION_SETTINGS) for codec, path in motion_videos.items()}


@pytest.fixture(scope="module")
def level_astronaut(videos_dir):
    """An untilted astronaut video moving right by one pixel per frame, and its extracted clip."""
    path = videos_dir / "level.mp4"
    write_video(path, tilted_astronaut(0.0, 8), FPS)
    return extract_clip(path, MOTION_SETTINGS)


# Known motion through both codecs.

@pytest.mark.parametrize("codec", ["h264", "mp4v"])
def test_motion_video_extracts(motion_clips, codec):
    extracted = motion_clips[codec]
    assert extracted.num_decoded == MOTION_FRAMES
    assert extracted.fps == pytest.approx(FPS)
    assert extracted.quality["face_fraction"] == 1.0
    assert extracted.quality["max_faces"] == 1
    assert extracted.quality["rotation"] == 0
    assert extracted.landmark_source == "dlib"
    assert extracted.detected.all()
    assert extracted.mask.all()
    assert extracted.clip.shape == (8, 64, 64, 3)


@pytest.mark.parametrize("codec", ["h264", "mp4v"])
def test_motion_aligned_eyes_canonical(motion_clips, motion, codec):
    extracted = motion_clips[codec]
    aligned_eyes = eye_centres(extracted.aligned_landmarks.astype(np.float64))  # (N, 2, 2)
    errors = np.abs(aligned_eyes - canonical_eye_positions(64)).max(axis=(1, 2))  # (N,)
    assert errors.max() < 1.0, f"aligned eye error per frame: {errors.round(2)}"

    # Alignment undoes the motion, so the aligned frames differ much less than the raw ones.
    frames, _ = motion
    raw_change = np.abs(frames[-1].astype(np.int16) - frames[0]).mean()
    clip = extracted.clip.astype(np.int16)
    aligned_change = np.abs(clip[-1] - clip[0]).mean()
    assert aligned_change < 0.5 * raw_change


@pytest.mark.parametrize("codec", ["h264", "mp4v"])
def test_motion_nose_follows_affine(motion_clips, motion, codec):
    _, matrices = motion
    nose = motion_clips[codec].landmarks[:, NOSE_TIP].astype(np.float64)  # (N, 2)
    # The nose tip in the still portrait's pixels, averaged over frames, moved by each
    # frame's known matrix.
    in_image = np.stack([apply_matrix(np.linalg.inv(matrix), point)
                         for matrix, point in zip(matrices, nose)])  # (N, 2)
    reference = in_image.mean(axis=0)
    expected = np.stack([apply_matrix(matrix, reference) for matrix in matrices])  # (N, 2)

    assert np.linalg.norm(expected[-1] - expected[0]) > 5.0, "the motion is too small to test"
    errors = np.linalg.norm(nose - expected, axis=1)  # (N,)
    assert errors.max() < 2.0, f"nose tip error per frame: {errors.round(2)}"


@pytest.mark.parametrize("codec", ["h264", "mp4v"])
def test_detect_every_five_matches(motion_clips, motion_videos, codec):
    settings = PreprocessSettings(num_frames=8, image_size=64, landmarks="dlib",
                                  tracker={"detect_every": 5})
    carried = extract_clip(motion_videos[codec], settings)
    distances = np.linalg.norm(carried.landmarks - motion_clips[codec].landmarks, axis=-1)
    assert carried.detected.all()
    assert distances.max() <= 3.0
    assert distances.mean() < 1.0


# Bad inputs: each ends in an error naming the file and a skipped row in the cache.

def test_empty_file_skipped(tmp_path, good_video):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")

    error = extraction_error(VideoReadError, path)
    assert error.reason == "file is empty"
    index = assert_skipped_in_build(tmp_path / "cache", good_video, path, "file is empty")
    assert index.loc[1, "num_decoded"] == 0
    assert np.isnan(index.loc[1, "face_fraction"])


@pytest.fixture(scope="module")
def faststart_video(videos_dir, synthetic_frames):
    """A 20-frame H.264 MP4 with its header (the moov box) before the frame data."""
    path = videos_dir / "faststart.mp4"
    write_with_pyav(path, synthetic_frames[:20], container_options={"movflags": "faststart"})
    return path


def test_truncated_half_skipped(tmp_path, good_video, synthetic_frames):
    # write_video puts the moov box, which indexes the frames, at the end of the file, so the
    # first half lacks it and FFmpeg cannot open the file at all.
    source = tmp_path / "source.mp4"
    write_video(source, synthetic_frames[:20], FPS)
    data = source.read_bytes()
    boxes = mp4_boxes(data)
    assert boxes["moov"][0] > len(data) // 2
    path = tmp_path / "half.mp4"
    path.write_bytes(data[:len(data) // 2])

    error = extraction_error(VideoReadError, path)
    assert error.reason == "FFmpeg failed to open it (Invalid data found when processing input)"
    assert_skipped_in_build(tmp_path / "cache", good_video, path, error.reason)


def test_truncated_after_header_skipped(tmp_path, good_video, faststart_video):
    # Cut right after the mdat box header: the file opens, but no frame data follows.
    data = faststart_video.read_bytes()
    mdat_offset, _ = mp4_boxes(data)["mdat"]
    path = tmp_path / "header_only.mp4"
    path.write_bytes(data[:mdat_offset + 8])

    error = extraction_error(VideoReadError, path)
    assert error.reason == "no frame could be decoded"
    assert_skipped_in_build(tmp_path / "cache", good_video, path, error.reason)


def test_truncated_frames_skipped(tmp_path, good_video, faststart_video):
    # Cut at 90%: some frames decode before the missing data, and the video is still skipped.
    data = faststart_video.read_bytes()
    path = tmp_path / "cut_frames.mp4"
    path.write_bytes(data[:len(data) * 9 // 10])

    error = extraction_error(VideoReadError, path)
    match = re.fullmatch(r"decoding failed after (\d+) frames \((.+)\)", error.reason)
    assert match is not None, error.reason
    assert 0 < int(match.group(1)) < 20
    assert_skipped_in_build(tmp_path / "cache", good_video, path, error.reason)


def test_text_file_skipped(tmp_path, good_video):
    path = tmp_path / "notes.mp4"
    path.write_text("subject 12, smile take 2: retake, lighting changed\n" * 40)

    error = extraction_error(VideoReadError, path)
    assert error.reason == "FFmpeg failed to open it (Invalid data found when processing input)"
    assert_skipped_in_build(tmp_path / "cache", good_video, path, error.reason)


def test_png_file_skipped(tmp_path, good_video):
    # FFmpeg probes the bytes and would read this as a one-frame video with a visible face.
    ok, png = cv2.imencode(".png", cv2.cvtColor(astronaut_crop(), cv2.COLOR_RGB2BGR))
    assert ok
    path = tmp_path / "portrait.mp4"
    path.write_bytes(png.tobytes())

    error = extraction_error(VideoReadError, path)
    assert error.reason == "file is a still image, not a video (FFmpeg format png_pipe)"
    assert_skipped_in_build(tmp_path / "cache", good_video, path, error.reason)


def test_garbage_packets_skipped(tmp_path, good_video):
    # A Matroska header with an H.264 video stream, followed by 10 packets of random bytes.
    # The H.264 decoder of the installed FFmpeg drops them without an error, so the stream
    # yields no frame at all.
    path = tmp_path / "garbage.mkv"
    rng = np.random.default_rng(0)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("h264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
        for index in range(10):
            packet = av.Packet(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
            packet.stream = stream
            packet.pts = packet.dts = index
            packet.time_base = Fraction(1, FPS)
            container.mux(packet)
    with VideoReader(path) as reader:
        assert reader.fps == pytest.approx(FPS)

    error = extraction_error(VideoReadError, path)
    assert error.reason == "no frame could be decoded"
    assert_skipped_in_build(tmp_path / "cache", good_video, path, error.reason)


def test_short_video_padded(tmp_path, good_video, synthetic_frames):
    path = tmp_path / "short.mp4"
    write_video(path, synthetic_frames[:5], FPS)

    index = build_with_good_video(tmp_path / "cache", good_video, path)
    assert_good_video_kept(tmp_path / "cache", index, num_kept=2)
    assert index.loc[1, "status"] == "ok"
    assert index.loc[1, "num_decoded"] == 5
    clips, mask, _ = load_clip_cache(tmp_path / "cache")
    np.testing.assert_array_equal(mask[1], [True] * 5 + [False] * 3)
    assert (clips[1, 5:] == 0).all()
    assert clips[1, :5].reshape(5, -1).max(axis=1).min() > 0


@pytest.mark.parametrize("content", ["noise", "gray"])
def test_no_face_skipped(tmp_path, good_video, content):
    rng = np.random.default_rng(1)
    if content == "noise":
        frames = rng.integers(0, 256, size=(12, 128, 128, 3), dtype=np.uint8)
    else:
        frames = np.full((12, 128, 128, 3), 128, dtype=np.uint8)
    path = tmp_path / f"{content}.mp4"
    write_video(path, frames, FPS)

    error = extraction_error(ClipExtractionError, path)
    assert error.reason == "no face found in any of 12 frames"
    assert error.num_decoded == 12
    index = assert_skipped_in_build(tmp_path / "cache", good_video, path, error.reason)
    assert index.loc[1, "num_decoded"] == 12
    assert index.loc[1, "face_fraction"] == 0.0
    assert index.loc[1, "max_faces"] == 0


SPARSE_FACE_FRAMES = [0, 10, 19]


@pytest.fixture(scope="module")
def sparse_face_video(videos_dir, synthetic_frames):
    """20 frames, blank gray except for a face in frames 0, 10 and 19."""
    frames = np.full((20, 128, 128, 3), 128, dtype=np.uint8)
    frames[SPARSE_FACE_FRAMES] = synthetic_frames[SPARSE_FACE_FRAMES]
    path = videos_dir / "sparse.mp4"
    write_video(path, frames, FPS)
    return path


def test_sparse_face_skipped(tmp_path, good_video, sparse_face_video):
    error = extraction_error(ClipExtractionError, sparse_face_video)
    assert error.reason == ("a face was found in only 3 of 20 frames (15%); "
                            "preprocess.min_face_fraction is 50%")
    index = assert_skipped_in_build(tmp_path / "cache", good_video, sparse_face_video,
                                    error.reason)
    assert index.loc[1, "face_fraction"] == pytest.approx(0.15)


def test_sparse_face_kept_masked(sparse_face_video):
    # 9 and 8 frames without a face last 0.36 and 0.32 s, beyond max_gap_s = 0.2 s, so every
    # frame between the three faces is masked out of a clip that samples all 20 frames.
    settings = PreprocessSettings(num_frames=20, image_size=CLIP_SIZE, landmarks="dlib",
                                  min_face_fraction=0.1)
    extracted = extract_clip(sparse_face_video, settings)

    expected = np.zeros(20, dtype=bool)
    expected[SPARSE_FACE_FRAMES] = True
    np.testing.assert_array_equal(extracted.detected, expected)
    np.testing.assert_array_equal(extracted.indices, np.arange(20))
    np.testing.assert_array_equal(extracted.mask, expected)
    assert (extracted.clip[~expected] == 0).all()
    assert extracted.clip[expected].reshape(3, -1).max(axis=1).min() > 0
    assert extracted.quality["face_fraction"] == pytest.approx(0.15)
    assert extracted.quality["longest_gap_s"] == pytest.approx(9 / FPS)


def test_two_faces_keep_larger(tmp_path):
    # The large face on the left moves right by 1 pixel per frame. The small face on the
    # right moves down by 1 pixel per frame, so its landmarks would show a vertical motion.
    image = skimage.data.astronaut()
    small = cv2.resize(astronaut_crop(), (120, 120), interpolation=cv2.INTER_AREA)
    frames = np.full((8, CROP, 2 * CROP, 3), 90, dtype=np.uint8)
    for i in range(8):
        frames[i, :, :CROP] = image[FACE_TOP:FACE_TOP + CROP, FACE_LEFT - i:FACE_LEFT - i + CROP]
        frames[i, 20 + i:140 + i, CROP + 20:CROP + 140] = small
    path = tmp_path / "two_faces.mp4"
    write_video(path, frames, FPS)

    extracted = extract_clip(path, BUILD_SETTINGS)
    assert extracted.quality["max_faces"] == 2
    assert extracted.detected.all()
    assert extracted.landmarks[..., 0].max() < CROP, "landmarks left the large face"
    nose = extracted.landmarks[:, NOSE_TIP]  # (N, 2)
    np.testing.assert_allclose(nose[:, 0] - nose[0, 0], np.arange(8), atol=1.5)
    np.testing.assert_allclose(nose[:, 1] - nose[0, 1], 0.0, atol=1.5)


@pytest.fixture(scope="module")
def portrait_upright(videos_dir, synthetic_frames):
    """Portrait frames (10, 160, 128, 3), the synthetic face with the edges repeated above and
    below, and the clip extracted from them encoded without rotation."""
    frames = np.pad(synthetic_frames[:10], ((0, 0), (16, 16), (0, 0), (0, 0)), mode="edge")
    path = videos_dir / "upright.mp4"
    write_video(path, frames, FPS)
    return frames, extract_clip(path, BUILD_SETTINGS)


@pytest.mark.parametrize("degrees", [90, 270])
def test_display_rotation_uprights_frames(tmp_path, portrait_upright, degrees):
    # The stored frames are the upright ones turned clockwise by `degrees`, and the display
    # matrix turns them back counter-clockwise by `degrees` on playback.
    upright, reference = portrait_upright
    stored = np.rot90(upright, k=-degrees // 90, axes=(1, 2))  # (N, 128, 160, 3)
    path = tmp_path / f"rotated_{degrees}.mp4"
    write_with_pyav(path, stored, rotation=degrees)
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).rotation % 360 == degrees

    with VideoReader(path) as reader:
        shapes = {frame.shape for frame in reader}
        assert reader.rotation == degrees
    assert shapes == {(160, 128, 3)}
    extracted = extract_clip(path, BUILD_SETTINGS)
    assert extracted.quality["rotation"] == degrees
    assert extracted.quality["face_fraction"] == 1.0
    distances = np.linalg.norm(extracted.landmarks - reference.landmarks, axis=-1)  # (N, 68)
    assert distances.mean() < 1.5
    difference = np.abs(extracted.clip.astype(np.int16) - reference.clip).mean()
    assert difference < 6.0


def test_tilted_face_aligned_level(tmp_path, level_astronaut):
    path = tmp_path / "tilted.mp4"
    write_video(path, tilted_astronaut(15.0, 8), FPS)
    extracted = extract_clip(path, MOTION_SETTINGS)

    def eye_line_degrees(landmarks):
        eyes = eye_centres(landmarks.astype(np.float64))  # (N, 2, 2)
        span = eyes[:, 1] - eyes[:, 0]
        return np.degrees(np.arctan2(span[:, 1], span[:, 0]))  # (N,)

    assert extracted.detected.all()
    # Turning the image counter-clockwise raises the subject's left eye (image right), which
    # lowers the eye line angle in image coordinates, whose y axis points down.
    tilt = eye_line_degrees(extracted.landmarks) - eye_line_degrees(level_astronaut.landmarks)
    np.testing.assert_allclose(tilt, -15.0, atol=1.5)
    assert np.abs(eye_line_degrees(extracted.aligned_landmarks)).max() < 1.0
    aligned_eyes = eye_centres(extracted.aligned_landmarks.astype(np.float64))
    assert np.abs(aligned_eyes - canonical_eye_positions(64)).max() < 1.0


def test_grayscale_video_processed(tmp_path, synthetic_frames):
    colour_path = tmp_path / "colour.mp4"
    write_video(colour_path, synthetic_frames[:10], FPS)
    gray = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in synthetic_frames[:10]])
    path = tmp_path / "gray.mkv"
    write_with_pyav(path, gray, codec="ffv1", pix_fmt="gray")
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "gray"

    extracted = extract_clip(path, BUILD_SETTINGS)
    assert extracted.num_decoded == 10
    assert extracted.quality["face_fraction"] == 1.0
    assert extracted.mask.all()
    np.testing.assert_array_equal(extracted.clip[..., 0], extracted.clip[..., 1])
    np.testing.assert_array_equal(extracted.clip[..., 0], extracted.clip[..., 2])
    colour = extract_clip(colour_path, BUILD_SETTINGS)
    distances = np.linalg.norm(extracted.landmarks - colour.landmarks, axis=-1)
    assert distances.mean() < 1.5


# Frames at 50 fps for 0.3 s, then at 12.5 fps up to 0.88 s, all on a 20 ms grid.
VFR_TIMES_MS = [20 * i for i in range(16)] + [320 + 80 * i for i in range(8)]


@pytest.fixture(scope="module")
def vfr_video(videos_dir, synthetic_frames):
    path = videos_dir / "variable_rate.mp4"
    write_with_pyav(path, synthetic_frames[:len(VFR_TIMES_MS)], times_ms=VFR_TIMES_MS)
    return path


def test_variable_rate_sampled_in_time(vfr_video):
    # 12.5 fps over 0.88 s gives 12 target times, 80 ms apart, each matching a frame exactly.
    settings = PreprocessSettings(num_frames=12, image_size=CLIP_SIZE, landmarks="dlib",
                                  fps=12.5)
    extracted = extract_clip(vfr_video, settings)

    np.testing.assert_allclose(extracted.timestamps, np.array(VFR_TIMES_MS) / 1000, atol=1e-6)
    assert extracted.quality["frame_interval_cv"] > 0.1
    assert extracted.mask.all()
    sampled_times = extracted.timestamps[extracted.indices]  # (T,)
    np.testing.assert_allclose(np.diff(sampled_times), 0.08, atol=1e-6)
    steps = np.diff(extracted.indices)
    assert steps.min() == 1
    assert steps.max() == 4


def test_variable_rate_sampled_by_index(vfr_video, caplog):
    # Without preprocess.fps the clip is spread over frame indices, so its times are uneven,
    # and the extraction warns about it.
    settings = PreprocessSettings(num_frames=12, image_size=CLIP_SIZE, landmarks="dlib")
    with caplog.at_level(logging.WARNING, logger="siamlib.video.extract"):
        extracted = extract_clip(vfr_video, settings)

    np.testing.assert_array_equal(extracted.indices,
                                  np.floor(np.linspace(0, 23, 12) + 0.5).astype(np.int64))
    gaps = np.diff(extracted.timestamps[extracted.indices])
    assert gaps.max() - gaps.min() > 0.1
    assert "frame intervals vary" in caplog.text
    assert "variable_rate.mp4" in caplog.text


def test_4k_video_processed(tmp_path, level_astronaut):
    # The portrait window enlarged 13.5 times to 2160 x 2160 in the middle of a 4K frame.
    scale, left = 2160 / CROP, 840
    face = cv2.resize(astronaut_crop(), (2160, 2160), interpolation=cv2.INTER_CUBIC)
    frames = np.zeros((3, 2160, 3840, 3), dtype=np.uint8)
    frames[:, :, left:left + 2160] = face
    path = tmp_path / "uhd.mp4"
    write_video(path, frames, FPS)
    del frames, face

    extracted = extract_clip(path, BUILD_SETTINGS)
    assert extracted.num_decoded == 3
    assert extracted.clip.shape == (CLIP_FRAMES, CLIP_SIZE, CLIP_SIZE, 3)
    np.testing.assert_array_equal(extracted.mask, [True] * 3 + [False] * 5)
    assert extracted.quality["face_fraction"] == 1.0
    # Frame 0 of the level video is the same window at its own size.
    expected = (level_astronaut.landmarks[0] + 0.5) * scale - 0.5 + [left, 0]  # (68, 2)
    errors = np.linalg.norm(extracted.landmarks[0] - expected, axis=-1)  # (68,)
    assert errors.mean() < 0.05 * inter_ocular_distance(expected[None])[0]


# One build over good and bad videos, in parallel and serially.

@pytest.fixture(scope="module")
def mixed_annotations(videos_dir, good_video, motion_videos, synthetic_frames):
    short = videos_dir / "mixed_short.mp4"
    write_video(short, synthetic_frames[:5], FPS)
    empty = videos_dir / "mixed_empty.mp4"
    empty.write_bytes(b"")
    text = videos_dir / "mixed_text.mp4"
    text.write_text("not a video\n" * 50)
    noise = videos_dir / "mixed_noise.mp4"
    rng = np.random.default_rng(2)
    write_video(noise, rng.integers(0, 256, size=(10, 96, 96, 3), dtype=np.uint8), FPS)
    paths = [good_video, empty, motion_videos["h264"], text, short, noise,
             motion_videos["mp4v"]]
    return pd.DataFrame({"video": [path.name for path in paths],
                         "path": [str(path) for path in paths],
                         "age": [21, 33, 45, 52, 60, 18, 27]})


def read_cache_bytes(cache_dir) -> dict[str, bytes]:
    names = ["index.csv", "clips.npy", "mask.npy"]
    names += [f"tracks/{path.name}" for path in sorted((cache_dir / "tracks").iterdir())]
    return {name: (cache_dir / name).read_bytes() for name in names}


def test_parallel_build_matches_serial(tmp_path, mixed_annotations, caplog):
    parallel_dir, serial_dir = tmp_path / "parallel", tmp_path / "serial"
    parallel = build_clip_cache(mixed_annotations, None, parallel_dir, BUILD_SETTINGS,
                                progress=False, workers=2)
    build_clip_cache(mixed_annotations, None, serial_dir, BUILD_SETTINGS, progress=False,
                     workers=1)

    assert list(parallel["status"]) == ["ok", "skipped", "ok", "skipped", "ok", "skipped", "ok"]
    assert list(parallel["row"]) == [0, -1, 1, -1, 2, -1, 3]
    assert parallel.loc[1, "reason"] == "file is empty"
    assert parallel.loc[5, "reason"] == "no face found in any of 10 frames"
    parallel_bytes = read_cache_bytes(parallel_dir)
    assert len(parallel_bytes) == 3 + 4
    assert parallel_bytes == read_cache_bytes(serial_dir)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="siamlib.video.clips"):
        build_clip_cache(mixed_annotations, None, parallel_dir, BUILD_SETTINGS,
                         progress=False, workers=2)
    assert "Reused the results of 7 of 7 videos from an earlier run" in caplog.text
    assert read_cache_bytes(parallel_dir) == parallel_bytes
