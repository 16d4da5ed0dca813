"""Tests for loading a video manifest CSV file into the annotation table."""

import logging
from pathlib import Path

import pandas as pd
import pytest

from siamlib.data.manifest import load_manifest
from siamlib.data.uvanemo import ANNOTATION_COLUMNS

HEADER = "path,subject,age,gender,expression"
LINES = [
    HEADER,
    "videos/s01_disgust.mp4,s01,34,F,Disgust",
    "videos/s02_disgust.mp4,s02,61,m,disgust",
    "videos/s01_posed.mp4,s01,34.0,female,POSED",
]
VIDEOS = ["s01_disgust.mp4", "s02_disgust.mp4", "s01_posed.mp4"]


def write_manifest(folder: Path, lines, newline="\n", bom=False, videos=VIDEOS,
                   name="manifest.csv") -> Path:
    """Write a manifest and an empty file for each name in `videos` under folder/videos."""
    (folder / "videos").mkdir(exist_ok=True)
    for video in videos:
        (folder / "videos" / video).write_bytes(b"")
    path = folder / name
    text = newline.join(lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def expected_table(folder: Path) -> pd.DataFrame:
    return pd.DataFrame({
        "video": VIDEOS,
        "path": [str(folder / "videos" / video) for video in VIDEOS],
        "subject": [1, 2, 1],
        "age": [34, 61, 34],
        "gender": ["female", "male", "female"],
        "smile_type": ["disgust", "disgust", "posed"],
    })


def error_message(manifest: Path) -> str:
    with pytest.raises(ValueError) as error:
        load_manifest(manifest)
    return str(error.value)


def test_load_plain_manifest(tmp_path):
    table = load_manifest(write_manifest(tmp_path, LINES))
    assert list(table.columns) == ANNOTATION_COLUMNS
    assert isinstance(table.index, pd.RangeIndex)
    pd.testing.assert_frame_equal(table, expected_table(tmp_path))


def test_relative_paths_follow_manifest_folder(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    manifest = write_manifest(data, LINES)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    table = load_manifest(Path("..") / "data" / manifest.name)
    assert table["path"].tolist() == [str(data / "videos" / video) for video in VIDEOS]


def test_absolute_and_dotted_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    lines = [
        HEADER,
        f"{tmp_path / 'videos' / VIDEOS[0]},1,30,f,posed",
        f"sub/../videos/{VIDEOS[1]},2,40,m,posed",
    ]
    table = load_manifest(write_manifest(tmp_path, lines))
    assert table["path"].tolist() == [str(tmp_path / "videos" / VIDEOS[0]),
                                      str(tmp_path / "videos" / VIDEOS[1])]
    assert table["video"].tolist() == VIDEOS[:2]


def test_symlinked_video_keeps_its_name(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "a1b2c3").write_bytes(b"")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "clip.mp4").symlink_to(tmp_path / "store" / "a1b2c3")
    lines = [HEADER, "videos/clip.mp4,1,30,f,posed"]
    table = load_manifest(write_manifest(tmp_path, lines, videos=[]))
    assert table["path"].tolist() == [str(tmp_path / "videos" / "clip.mp4")]


@pytest.mark.parametrize(
    "layout",
    [
        {"newline": "\r\n"},
        {"newline": "\r"},
        {"bom": True},
        {"pad": True},
        {"quote": True},
        {"trailing_blank": True},
        {"upper_header": True},
        {"newline": "\r\n", "bom": True, "pad": True, "quote": True, "trailing_blank": True,
         "upper_header": True},
    ],
    ids=["crlf", "cr", "bom", "padded", "quoted", "trailing_blank", "upper_header", "all"],
)
def test_format_variants_give_same_table(tmp_path, layout):
    lines = []
    for number, line in enumerate(LINES):
        values = line.split(",")
        if layout.get("upper_header") and number == 0:
            values = [value.upper() for value in values]
        if layout.get("quote"):
            values = [f'"{value}"' for value in values]
        if layout.get("pad"):
            values = [f"  {value}   " for value in values]
        lines.append(",".join(values))
    if layout.get("trailing_blank"):
        lines += ["", "   ", ""]
    manifest = write_manifest(tmp_path, lines, newline=layout.get("newline", "\n"),
                              bom=layout.get("bom", False))
    pd.testing.assert_frame_equal(load_manifest(manifest), expected_table(tmp_path))


def test_smile_type_column_accepted(tmp_path):
    lines = ["Smile_Type,Gender,Age,Subject,Path"] + [
        "Spontaneous,f,30,1,videos/s01_disgust.mp4",
        "deliberate,m,50,2,videos/s02_disgust.mp4",
    ]
    table = load_manifest(write_manifest(tmp_path, lines))
    assert table["smile_type"].tolist() == ["spontaneous", "deliberate"]
    assert table["age"].tolist() == [30, 50]
    assert table["subject"].tolist() == [1, 2]


def test_integer_subjects_kept(tmp_path):
    lines = [
        HEADER,
        "videos/s01_disgust.mp4,7,34,f,disgust",
        "videos/s02_disgust.mp4,12,61,m,disgust",
        "videos/s01_posed.mp4,007,34,f,posed",
    ]
    table = load_manifest(write_manifest(tmp_path, lines))
    assert table["subject"].tolist() == [7, 12, 7]
    assert table["subject"].dtype == "int64"


def test_string_subjects_numbered(tmp_path, caplog):
    lines = [
        HEADER,
        "videos/a.mp4,zoe,34,f,disgust",
        "videos/b.mp4,17,61,m,disgust",
        "videos/c.mp4,zoe,34,f,posed",
        "videos/d.mp4,adam,20,m,posed",
    ]
    manifest = write_manifest(tmp_path, lines, videos=["a.mp4", "b.mp4", "c.mp4", "d.mp4"])
    with caplog.at_level(logging.INFO, logger="siamlib.data.manifest"):
        table = load_manifest(manifest)
    assert table["subject"].tolist() == [1, 2, 1, 3]
    assert table["subject"].dtype == "int64"
    assert "the 3 ids are numbered 1 to 3" in caplog.text


def test_extra_columns_logged_once(tmp_path, caplog):
    lines = [HEADER + ",notes,session"] + [line + ",fine,1" for line in LINES[1:]]
    with caplog.at_level(logging.INFO, logger="siamlib.data.manifest"):
        table = load_manifest(write_manifest(tmp_path, lines))
    pd.testing.assert_frame_equal(table, expected_table(tmp_path))
    extra = [record for record in caplog.records if "extra columns" in record.getMessage()]
    assert len(extra) == 1
    assert extra[0].levelno == logging.INFO
    assert "'notes', 'session'" in extra[0].getMessage()


@pytest.mark.parametrize("bad_row, line", [(0, 2), (1, 4)])
def test_multiline_value_keeps_line_numbers(tmp_path, bad_row, line):
    # The quoted note spans lines 2 and 3, so that row starts on line 2 and the next on line 4.
    ages = ["34", "61"]
    ages[bad_row] = "sixty"
    lines = [
        HEADER + ",notes",
        f'videos/s01_disgust.mp4,s01,{ages[0]},f,disgust,"first line',
        'second line"',
        f"videos/s02_disgust.mp4,s02,{ages[1]},m,disgust,",
    ]
    message = error_message(write_manifest(tmp_path, lines))
    assert f"manifest.csv, line {line}: invalid age 'sixty'" in message


@pytest.mark.parametrize("age", ["0", "101", "23.5", "abc", ""])
def test_invalid_age_names_line(tmp_path, age):
    lines = LINES[:2] + [f"videos/s02_disgust.mp4,s02,{age},m,disgust"]
    message = error_message(write_manifest(tmp_path, lines))
    assert f"manifest.csv, line 3: invalid age {age!r}" in message
    assert "expected whole years from 1 to 100" in message


@pytest.mark.parametrize("age, expected", [("1", 1), ("100", 100), ("100.0", 100)])
def test_age_bounds_accepted(tmp_path, age, expected):
    lines = [HEADER, f"videos/s01_disgust.mp4,s01,{age},f,disgust"]
    assert load_manifest(write_manifest(tmp_path, lines))["age"].tolist() == [expected]


@pytest.mark.parametrize("gender", ["x", "woman", ""])
def test_invalid_gender_names_line(tmp_path, gender):
    lines = LINES[:3] + [f"videos/s01_posed.mp4,s01,34,{gender},posed"]
    message = error_message(write_manifest(tmp_path, lines))
    assert f"manifest.csv, line 4: invalid gender {gender!r}" in message


@pytest.mark.parametrize(
    "row, expected",
    [
        (",s02,61,m,disgust", "line 3: empty path"),
        ("videos/s02_disgust.mp4,,61,m,disgust", "line 3: empty subject"),
        ("videos/s02_disgust.mp4,s02,61,m,", "line 3: empty expression"),
        ("videos/s02_disgust.mp4,s02,61,m", "line 3: expected 5 values, one for each header "
                                            "column, got 4"),
    ],
)
def test_invalid_row_names_line(tmp_path, row, expected):
    lines = LINES[:2] + [row]
    assert expected in error_message(write_manifest(tmp_path, lines))


def test_empty_smile_type_named(tmp_path):
    lines = ["path,subject,age,gender,smile_type", "videos/s01_disgust.mp4,1,30,f,  "]
    assert "line 2: empty smile_type" in error_message(write_manifest(tmp_path, lines))


def test_missing_column_lists_found(tmp_path):
    lines = ["path,subject,years,gender,expression", "videos/s01_disgust.mp4,1,30,f,posed"]
    message = error_message(write_manifest(tmp_path, lines))
    assert "manifest.csv, line 1: missing required column 'age'" in message
    assert "Found columns 'path', 'subject', 'years', 'gender', 'expression'" in message


def test_missing_expression_mentions_alias(tmp_path):
    lines = ["path,subject,age,gender", "videos/s01_disgust.mp4,1,30,f"]
    message = error_message(write_manifest(tmp_path, lines))
    assert "missing required column 'expression' (or 'smile_type')" in message


def test_both_expression_columns_rejected(tmp_path):
    lines = [HEADER + ",smile_type", "videos/s01_disgust.mp4,1,30,f,posed,posed"]
    message = error_message(write_manifest(tmp_path, lines))
    assert "both an 'expression' and a 'smile_type' column" in message


def test_repeated_column_rejected(tmp_path):
    lines = [HEADER + ",Age", "videos/s01_disgust.mp4,1,30,f,posed,31"]
    message = error_message(write_manifest(tmp_path, lines))
    assert "line 1: column 'age' appears more than once in the header (columns [3, 6])" in message


def test_duplicate_file_name_rejected(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.mp4").write_bytes(b"")
    (tmp_path / "b" / "x.mp4").write_bytes(b"")
    lines = [HEADER, "a/x.mp4,1,30,f,posed", "b/x.mp4,2,40,m,posed"]
    message = error_message(write_manifest(tmp_path, lines, videos=[]))
    assert "manifest.csv, line 3: video file name x.mp4 is also used on line 2" in message
    assert str(tmp_path / "a" / "x.mp4") in message
    assert "rename one of the files" in message


def test_duplicate_stem_rejected(tmp_path):
    lines = [HEADER, "videos/x.mp4,1,30,f,posed", "videos/y.mp4,1,30,f,posed",
             "videos/X.avi,2,40,m,posed"]
    manifest = write_manifest(tmp_path, lines, videos=["x.mp4", "y.mp4", "X.avi"])
    message = error_message(manifest)
    assert "manifest.csv, line 4: video X.avi has the same file stem as x.mp4 on line 2." in message
    assert "<stem>.npz" in message
    assert "Rename one of the files." in message


@pytest.mark.parametrize(
    "row, expected",
    [
        ("videos/s01_posed.mp4,s01,35,female,posed",
         "subject s01 has more than one age (line 2: 34, line 4: 35)"),
        ("videos/s01_posed.mp4,s01,34,m,posed",
         "subject s01 has more than one gender (line 2: female, line 4: male)"),
    ],
)
def test_subject_conflict_rejected(tmp_path, row, expected):
    lines = LINES[:3] + [row]
    message = error_message(write_manifest(tmp_path, lines))
    assert message.startswith(f"{tmp_path / 'manifest.csv'}: {expected}")


def test_header_only_rejected(tmp_path):
    message = error_message(write_manifest(tmp_path, [HEADER, "", ""]))
    assert "manifest.csv: no videos listed below the header on line 1" in message


def test_empty_file_rejected(tmp_path):
    message = error_message(write_manifest(tmp_path, ["", "  "]))
    assert "manifest.csv: empty file, expected a header row" in message


def test_not_utf8_rejected(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes("\n".join(LINES).encode("utf-16"))
    assert "manifest.csv: not UTF-8 text" in error_message(manifest)


def test_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest not found: .*absent.csv"):
        load_manifest(tmp_path / "absent.csv")


def test_missing_video_dropped(tmp_path, caplog):
    manifest = write_manifest(tmp_path, LINES, videos=[VIDEOS[0], VIDEOS[2]])
    with caplog.at_level(logging.WARNING, logger="siamlib.data.uvanemo"):
        table = load_manifest(manifest)
    assert table["video"].tolist() == [VIDEOS[0], VIDEOS[2]]
    assert table.index.tolist() == [0, 1]
    assert isinstance(table.index, pd.RangeIndex)
    assert (f"{manifest}, line 3: video {VIDEOS[1]} is missing from {tmp_path / 'videos'}, "
            f"dropped") in caplog.text
    assert f"Dropped 1 of 3 videos listed in {manifest}" in caplog.text


def test_no_video_found(tmp_path):
    manifest = write_manifest(tmp_path, LINES, videos=[])
    with pytest.raises(FileNotFoundError) as error:
        load_manifest(manifest)
    message = str(error.value)
    assert f"none of the 3 videos listed in {manifest} exists" in message
    assert str(tmp_path / "videos" / VIDEOS[0]) in message
