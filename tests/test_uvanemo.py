"""Tests for reading UvA-NEMO File_Details files and loading the annotation table."""

import logging
from pathlib import Path

import pandas as pd
import pytest

from siamlib.data.uvanemo import FILE_DETAILS_NAME, load_annotations, read_file_details

ROWS = [
    ("001_spontaneous_smile_1.mp4", "1", "female", "23", "spontaneous"),
    ("001_deliberate_smile_2.mp4", "1", "female", "23", "deliberate"),
    ("002_deliberate_smile_1.mp4", "2", "male", "8", "deliberate"),
]
HEADER = [
    "UvA-NEMO Smile Database",
    "File details",
    "",
    "Ages in years",
    "Filename\tSubject\tGender\tAge\tType",
]


def write_details(path: Path, rows, header=(), newline="\n", pad=False) -> Path:
    lines = list(header)
    for row in rows:
        fields = [f"  {value}   " if pad else value for value in row]
        lines.append("\t".join(fields))
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    return path


def test_read_plain_file(tmp_path):
    table = read_file_details(write_details(tmp_path / "details.txt", ROWS))
    assert list(table.columns) == ["video", "subject", "gender", "age", "smile_type"]
    assert table["video"].tolist() == [row[0] for row in ROWS]
    assert table["subject"].tolist() == [1, 1, 2]
    assert table["age"].tolist() == [23, 23, 8]
    assert table["gender"].tolist() == ["female", "female", "male"]


def test_read_maps_deliberate_to_posed(tmp_path):
    table = read_file_details(write_details(tmp_path / "details.txt", ROWS))
    assert table["smile_type"].tolist() == ["spontaneous", "posed", "posed"]


def test_read_header_crlf_padding(tmp_path):
    path = write_details(tmp_path / "details.txt", ROWS, header=HEADER, newline="\r\n", pad=True)
    table = read_file_details(path)
    assert table["video"].tolist() == [row[0] for row in ROWS]
    assert table["age"].tolist() == [23, 23, 8]
    assert table["smile_type"].tolist() == ["spontaneous", "posed", "posed"]


def test_read_short_header_and_bom(tmp_path):
    path = tmp_path / "details.txt"
    write_details(path, ROWS, header=["Filename\tSubject\tGender\tAge\tType"])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(read_file_details(path)) == 3


def test_read_gender_abbreviations(tmp_path):
    rows = [
        ("001_spontaneous_smile_1.mp4", "1", "F", "23", "Spontaneous"),
        ("002_deliberate_smile_1.mp4", "2", "M", "40", "DELIBERATE"),
        ("003_deliberate_smile_1.mp4", "3", "Male", "70", "deliberate"),
    ]
    table = read_file_details(write_details(tmp_path / "details.txt", rows))
    assert table["gender"].tolist() == ["female", "male", "male"]
    assert table["smile_type"].tolist() == ["spontaneous", "posed", "posed"]


def test_read_space_separated_row(tmp_path):
    path = tmp_path / "details.txt"
    path.write_text("001_spontaneous_smile_1.mp4   1   female   23   spontaneous\n")
    assert read_file_details(path)["subject"].tolist() == [1]


def test_read_name_without_extension(tmp_path):
    rows = [("001_deliberate_smile_2", "1", "female", "23", "deliberate")]
    table = read_file_details(write_details(tmp_path / "details.txt", rows))
    assert table["video"].tolist() == ["001_deliberate_smile_2.mp4"]


@pytest.mark.parametrize(
    "bad_row, message",
    [
        (("002_deliberate_smile_2.mp4", "2", "unknown", "8", "deliberate"), "invalid gender"),
        (("002_deliberate_smile_2.mp4", "2", "male", "eight", "deliberate"), "invalid age"),
        (("002_deliberate_smile_2.mp4", "2", "male", "0", "deliberate"), "invalid age"),
        (("002_deliberate_smile_2.mp4", "2", "male", "8.5", "deliberate"), "invalid age"),
        (("002_deliberate_smile_2.mp4", "2", "male", "8", "laughing"), "invalid smile type"),
        (("002_deliberate_smile_2.mp4", "two", "male", "8", "deliberate"), "invalid subject"),
        (("002_deliberate_smile_2.mp4", "2", "male", "8"), "expected 5 fields"),
    ],
)
def test_read_bad_row_names_line(tmp_path, bad_row, message):
    path = write_details(tmp_path / "details.txt", ROWS + [bad_row], header=HEADER,
                         newline="\r\n")
    # Five header lines and three good rows come first, so the bad row is line 9.
    with pytest.raises(ValueError, match=message) as error:
        read_file_details(path)
    assert "line 9" in str(error.value)
    assert "details.txt" in str(error.value)


def test_read_long_header_rejected(tmp_path):
    # HEADER has four non-blank lines; two more make six, and the sixth is line 7.
    header = HEADER + ["one more line", "and another"]
    path = write_details(tmp_path / "details.txt", ROWS, header=header)
    with pytest.raises(ValueError, match="line 7"):
        read_file_details(path)


def test_read_conflicting_age_rejected(tmp_path):
    rows = ROWS + [("001_spontaneous_smile_3.mp4", "1", "female", "24", "spontaneous")]
    with pytest.raises(ValueError, match="subject 1 has more than one age"):
        read_file_details(write_details(tmp_path / "details.txt", rows))


def test_read_duplicate_video_rejected(tmp_path):
    rows = ROWS + [ROWS[0]]
    with pytest.raises(ValueError, match=r"listed more than once, on lines \[1, 4\]") as error:
        read_file_details(write_details(tmp_path / "details.txt", rows))
    assert "details.txt, line 4: video 001_spontaneous_smile_1.mp4" in str(error.value)


def test_read_empty_file_rejected(tmp_path):
    path = write_details(tmp_path / "details.txt", [], header=HEADER[:2])
    with pytest.raises(ValueError, match="no video rows"):
        read_file_details(path)


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.txt"):
        read_file_details(tmp_path / "absent.txt")


def test_load_adds_paths(tmp_path):
    write_details(tmp_path / FILE_DETAILS_NAME, ROWS, header=HEADER)
    (tmp_path / "videos").mkdir()
    for row in ROWS:
        (tmp_path / "videos" / row[0]).write_bytes(b"")
    table = load_annotations(tmp_path)
    assert list(table.columns) == ["video", "path", "subject", "age", "gender", "smile_type"]
    assert table["path"].tolist() == [str(tmp_path / "videos" / row[0]) for row in ROWS]
    assert table.index.tolist() == [0, 1, 2]


def test_load_drops_missing_videos(tmp_path, caplog):
    # After the five header lines, the rows are on lines 6, 7 and 8.
    write_details(tmp_path / FILE_DETAILS_NAME, ROWS, header=HEADER)
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / ROWS[1][0]).write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="siamlib.data.uvanemo"):
        table = load_annotations(tmp_path, videos_dir="clips")
    assert table["video"].tolist() == [ROWS[1][0]]
    assert table.index.tolist() == [0]
    assert list(table.columns) == ["video", "path", "subject", "age", "gender", "smile_type"]
    clips = tmp_path / "clips"
    assert (f"{FILE_DETAILS_NAME}, line 6: video {ROWS[0][0]} is missing from {clips}, dropped"
            in caplog.text)
    assert (f"{FILE_DETAILS_NAME}, line 8: video {ROWS[2][0]} is missing from {clips}, dropped"
            in caplog.text)
    assert ROWS[1][0] not in caplog.text
    assert "Dropped 2 of 3" in caplog.text


def test_load_no_videos_found(tmp_path):
    write_details(tmp_path / FILE_DETAILS_NAME, ROWS)
    with pytest.raises(FileNotFoundError, match="none of the 3 videos"):
        load_annotations(tmp_path)


def test_load_missing_details_names_root(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_annotations(tmp_path)
    assert str(tmp_path) in str(error.value)
    assert FILE_DETAILS_NAME in str(error.value)


def test_read_misspelt_first_row_kept(tmp_path):
    # A first row with a misspelt name is still a row, not a header line to skip silently.
    rows = [("001_spontanous_smile_1", "1", "male", "30", "spontaneous"), ROWS[2]]
    table = read_file_details(write_details(tmp_path / "details.txt", rows, header=HEADER))
    assert len(table) == 2
    assert table["video"].iloc[0].startswith("001_spontanous_smile_1")


def test_read_comma_separated_explains(tmp_path):
    path = tmp_path / "details.txt"
    path.write_text("001_spontaneous_smile_1.mp4,1,female,23,spontaneous\n")
    with pytest.raises(ValueError, match="tab-separated.*first line is '001_spontaneous"):
        read_file_details(path)


def test_read_not_utf8_names_file(tmp_path):
    path = tmp_path / "details.txt"
    path.write_bytes("001_spontaneous_smile_1.mp4\t1\tfemale\t23\tspontaneous\n".encode("utf-16"))
    with pytest.raises(ValueError, match="details.txt: not UTF-8"):
        read_file_details(path)


# Rows for the format variants: mixed case, both age bounds and a name without extension.
VARIANT_ROWS = [
    ("001_spontaneous_smile_1.mp4", "1", "female", "23", "spontaneous"),
    ("001_deliberate_smile_2", "1", "F", "23", "Deliberate"),
    ("002_deliberate_smile_1.mp4", "2", "M", "100", "deliberate"),
    ("003_spontaneous_smile_1.mp4", "3", "male", "1", "SPONTANEOUS"),
]
VARIANT_HEADER = [
    ["UvA-NEMO", "Smile", "Database"],
    ["File", "details"],
    ["Ages", "in", "years"],
    ["1240", "videos"],
    ["Filename", "Subject", "Gender", "Age", "Type"],
]
EXPECTED_VARIANT_TABLE = pd.DataFrame({
    "video": ["001_spontaneous_smile_1.mp4", "001_deliberate_smile_2.mp4",
              "002_deliberate_smile_1.mp4", "003_spontaneous_smile_1.mp4"],
    "subject": [1, 1, 2, 3],
    "gender": ["female", "female", "male", "male"],
    "age": [23, 23, 100, 1],
    "smile_type": ["spontaneous", "posed", "posed", "spontaneous"],
})


def render_details(header=False, pad=False, newline="\n", separator="\t", trailing_blank=False,
                   bom=False) -> bytes:
    """Write VARIANT_ROWS in one of the layouts found in circulated copies of the file."""
    records = (VARIANT_HEADER if header else []) + [list(row) for row in VARIANT_ROWS]
    lines = []
    for record in records:
        values = [f"  {value}   " if pad else value for value in record]
        lines.append(separator.join(values))
    text = newline.join(lines) + newline
    if trailing_blank:
        text += newline + "   " + newline + newline
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


@pytest.mark.parametrize(
    "layout",
    [
        {},
        {"header": True},
        {"pad": True},
        {"newline": "\r\n"},
        {"newline": "\r"},
        {"trailing_blank": True},
        {"bom": True},
        {"separator": "   "},
        {"header": True, "pad": True, "newline": "\r\n", "separator": "  ",
         "trailing_blank": True, "bom": True},
        {"header": True, "pad": True, "newline": "\r", "trailing_blank": True, "bom": True},
    ],
    ids=["plain", "header", "padded", "crlf", "cr", "trailing_blank", "bom", "spaces",
         "all_crlf_spaces", "all_cr_tabs"],
)
def test_read_variants_give_same_table(tmp_path, layout):
    path = tmp_path / "details.txt"
    path.write_bytes(render_details(**layout))
    pd.testing.assert_frame_equal(read_file_details(path), EXPECTED_VARIANT_TABLE)


@pytest.mark.parametrize("age, valid", [("0", False), ("1", True), ("100", True),
                                        ("101", False)])
def test_read_age_bounds(tmp_path, age, valid):
    bad_row = ("003_deliberate_smile_1.mp4", "3", "male", age, "deliberate")
    path = write_details(tmp_path / "details.txt", ROWS + [bad_row], header=HEADER)
    if valid:
        assert read_file_details(path)["age"].tolist() == [23, 23, 8, int(age)]
        return
    # Five header lines and three good rows come first, so the new row is line 9.
    with pytest.raises(ValueError, match="invalid age") as error:
        read_file_details(path)
    message = str(error.value)
    assert message.startswith(f"{path}, line 9: ")
    assert "expected whole years from 1 to 100" in message


def test_read_unknown_gender_names_line(tmp_path):
    rows = ROWS[:2] + [("002_deliberate_smile_1.mp4", "2", "x", "8", "deliberate")]
    path = write_details(tmp_path / "details.txt", rows)
    with pytest.raises(ValueError, match="invalid gender 'x'") as error:
        read_file_details(path)
    assert str(error.value).startswith(f"{path}, line 3: ")
