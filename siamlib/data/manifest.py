"""Read a video manifest: a CSV file that lists any set of face videos with their annotations.

A manifest lets other expressions (posed disgust, say) or a lab's own recordings run through
the same stages as UvA-NEMO. It is a comma-separated file whose first non-blank line is a header
naming these columns, in any order and any case:

    path        Video file. A relative path is relative to the folder of the manifest.
    subject     Subject id, any string or integer. Integer ids are compared as numbers, so
                "007" and "7" are the same subject.
    age         Age in whole years, from 1 to 100, such as "23" or "23.0".
    gender      female, male, f or m, in any case.
    expression  Free label such as "spontaneous", "posed" or "disgust". A column named
                smile_type is accepted instead.

Extra columns are ignored. The file may start with a UTF-8 byte order mark, use LF, CRLF or CR
line endings, pad values with spaces, quote values and end with blank lines. An example:

    path,subject,age,gender,expression
    videos/s01_disgust.mp4,s01,34,F,disgust
    videos/s02_disgust.mp4,s02,61,m,disgust

`load_manifest` returns the same annotation table as `siamlib.data.uvanemo.load_annotations`,
so the later stages need no changes. Invalid rows raise a ValueError that names the manifest
and the line (the header is line 1). Videos missing on disk are dropped with a warning.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePath

import pandas as pd

from siamlib.data.uvanemo import (
    ANNOTATION_COLUMNS,
    check_subject_consistency,
    drop_missing_videos,
    parse_age,
    parse_gender,
)

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("path", "subject", "age", "gender", "expression")
EXPRESSION_COLUMNS = ("expression", "smile_type")
_INTEGER = re.compile(r"^[+-]?\d+$")


def _read_text(path: Path) -> str:
    """Read `path` as UTF-8 text, dropping a byte order mark."""
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not UTF-8 text ({error}). Save the manifest as UTF-8 CSV and retry."
        ) from None


def _read_records(text: str, path: Path) -> list[tuple[int, list[str]]]:
    """Split CSV text into (first line number, values stripped of spaces), skipping blank rows."""
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    records = []
    end_of_previous = 0
    try:
        for values in reader:
            # A quoted value can span lines, so a record starts after the previous one ends.
            start = end_of_previous + 1
            end_of_previous = reader.line_num
            values = [value.strip() for value in values]
            if any(values):
                records.append((start, values))
    except csv.Error as error:
        raise ValueError(f"{path}, line {reader.line_num}: not valid CSV ({error})") from None
    return records


def _locate_columns(header: list[str], path: Path, line: int) -> dict[str, int]:
    """Map each required column, with `expression` standing for either spelling, to its index."""
    names = [name.lower() for name in header]
    found = ", ".join(repr(name) for name in header)

    for column in REQUIRED_COLUMNS[:-1] + EXPRESSION_COLUMNS:
        positions = [i + 1 for i, name in enumerate(names) if name == column]
        if len(positions) > 1:
            raise ValueError(
                f"{path}, line {line}: column {column!r} appears more than once in the header "
                f"(columns {positions}). Keep one of them."
            )

    expression_columns = [column for column in EXPRESSION_COLUMNS if column in names]
    if len(expression_columns) > 1:
        raise ValueError(
            f"{path}, line {line}: the header has both an 'expression' and a 'smile_type' "
            f"column, which name the same thing. Keep one of them."
        )

    locations = {}
    for column in REQUIRED_COLUMNS:
        name = expression_columns[0] if column == "expression" and expression_columns else column
        if name not in names:
            alias = " (or 'smile_type')" if column == "expression" else ""
            raise ValueError(
                f"{path}, line {line}: missing required column {column!r}{alias}. Found "
                f"columns {found}, but the header must name the columns "
                f"{', '.join(REQUIRED_COLUMNS)}."
            )
        locations[column] = names.index(name)

    extra = [header[i] for i in range(len(header)) if i not in locations.values()]
    if extra:
        logger.info("Ignoring the extra columns %s of %s", ", ".join(map(repr, extra)), path)
    return locations


def _parse_record(
    values: list[str], columns: dict[str, int], num_columns: int, manifest: Path, where: str,
    expression_name: str,
) -> dict[str, object]:
    if len(values) != num_columns:
        raise ValueError(
            f"{where}: expected {num_columns} values, one for each header column, "
            f"got {len(values)}: {values!r}"
        )
    path_text = values[columns["path"]]
    if not path_text:
        raise ValueError(f"{where}: empty path, expected the video file")
    subject = values[columns["subject"]]
    if not subject:
        raise ValueError(f"{where}: empty subject, expected a subject id")
    expression = values[columns["expression"]].lower()
    if not expression:
        raise ValueError(
            f"{where}: empty {expression_name}, expected a label such as spontaneous or posed"
        )

    video_path = Path(path_text)
    if not video_path.is_absolute():
        video_path = manifest.parent / video_path
    return {
        "video": PurePath(path_text).name,
        # abspath normalises "..", but unlike Path.resolve it keeps symbolic links, so a
        # linked video (as DVC may create) keeps its own file name and extension.
        "path": os.path.abspath(video_path),
        "subject": subject,
        "age": parse_age(values[columns["age"]], where),
        "gender": parse_gender(values[columns["gender"]], where),
        "smile_type": expression,
    }


def _check_unique_names(table: pd.DataFrame, lines: Sequence[int], manifest: Path) -> None:
    """Raise when two videos share a file name, or a file stem ignoring case."""
    first_row_of: dict[str, int] = {}
    for row, name in enumerate(table["video"]):
        if name in first_row_of:
            first = first_row_of[name]
            raise ValueError(
                f"{manifest}, line {lines[row]}: video file name {name} is also used on line "
                f"{lines[first]} ({table.at[first, 'path']}). The file name identifies a "
                f"video in every later stage, so rename one of the files."
            )
        first_row_of[name] = row

    first_row_of_stem: dict[str, int] = {}
    for row, name in enumerate(table["video"]):
        stem = PurePath(name).stem.casefold()
        if stem in first_row_of_stem:
            first = first_row_of_stem[stem]
            raise ValueError(
                f"{manifest}, line {lines[row]}: video {name} has the same file stem as "
                f"{table.at[first, 'video']} on line {lines[first]}. Tracks and clips are "
                f"cached as <stem>.npz, so the two would overwrite each other. Stems are "
                f"compared ignoring case because a case-insensitive file system treats them "
                f"as one name. Rename one of the files."
            )
        first_row_of_stem[stem] = row


def _number_subjects(subject_ids: pd.Series, manifest: Path) -> tuple[pd.Series, bool]:
    """Return integer subject keys, numbering non-integer ids 1..K by first appearance.

    The bool is True when the ids were numbered.
    """
    if subject_ids.map(lambda text: _INTEGER.match(text) is not None).all():
        return subject_ids.map(int).astype("int64"), False

    numbers = {subject: number for number, subject in enumerate(subject_ids.unique(), start=1)}
    logger.info(
        "Subject ids in %s are not all integers, so the %d ids are numbered 1 to %d in order "
        "of first appearance", manifest, len(numbers), len(numbers),
    )
    logger.debug("Subject numbers for %s: %s", manifest, numbers)
    return subject_ids.map(numbers).astype("int64"), True


def load_manifest(path: str | Path) -> pd.DataFrame:
    """Load the annotation table of the videos listed in a manifest CSV file.

    The format is described in this module's docstring. Videos missing on disk are dropped,
    each with a warning that names the manifest, the line and the video.

    Args:
        path: The manifest CSV file.

    Returns:
        DataFrame with the columns of `siamlib.data.uvanemo.ANNOTATION_COLUMNS`: video (the
        file name of the listed path), path (absolute path as str), subject (int: the id itself
        when every id is an integer, else 1..K in order of first appearance), age (int, years),
        gender ("female" | "male") and smile_type (the expression label, lowercased). One row
        per video found on disk, in file order, with a fresh 0-based index.

    Raises:
        FileNotFoundError: If the manifest does not exist, or none of its videos exists.
        ValueError: If the manifest is not UTF-8 CSV, has no header, lacks a required column
            or lists no videos. Also raised for a row with the wrong number of values, an
            empty path, subject or expression, or an invalid age or gender. Also raised for
            two videos with the same file name or file stem, and for a subject with more than
            one age or gender. Each message names the manifest, and the line where there is
            one.
    """
    manifest = Path(path)
    records = _read_records(_read_text(manifest), manifest)
    if not records:
        raise ValueError(
            f"{manifest}: empty file, expected a header row naming the columns "
            f"{', '.join(REQUIRED_COLUMNS)} and one row per video"
        )

    header_line, header = records[0]
    columns = _locate_columns(header, manifest, header_line)
    expression_name = header[columns["expression"]].lower()
    if len(records) == 1:
        raise ValueError(f"{manifest}: no videos listed below the header on line {header_line}")

    rows = []
    lines = []
    for line, values in records[1:]:
        where = f"{manifest}, line {line}"
        rows.append(
            _parse_record(values, columns, len(header), manifest, where, expression_name)
        )
        lines.append(line)
    table = pd.DataFrame(rows, columns=ANNOTATION_COLUMNS)
    table["age"] = table["age"].astype("int64")

    _check_unique_names(table, lines, manifest)
    subjects, numbered = _number_subjects(table["subject"], manifest)
    # Conflicts are reported with the ids as written in the manifest, not their numbers.
    check_subject_consistency(
        table.assign(subject=table["subject"] if numbered else subjects), lines, manifest
    )
    table["subject"] = subjects

    table = drop_missing_videos(
        table, lines, manifest,
        f"none of the {len(table)} videos listed in {manifest} exists; the first is "
        f"{table.at[0, 'path']}. Relative paths are resolved against the manifest's folder "
        f"{manifest.parent.absolute()}.",
    )
    logger.info("Loaded %d videos of %d subjects from %s", len(table),
                table["subject"].nunique(), manifest)
    return table
