"""Read the UvA-NEMO Smile Database annotation file into the project's annotation table.

`UvA-NEMO_Smile_Database_File_Details.txt` lists one video a line, tab-separated:
filename, subject, gender, age, spontaneous|deliberate. Copies in circulation differ in whether
values are padded with spaces or separated by spaces instead of tabs, whether a header of up to
five lines precedes the rows, in line endings (LF, CRLF or CR), in trailing blank lines and in
whether the text starts with a UTF-8 byte order mark. This module accepts all of these variants
and returns the same table for each.

Every row is validated: the gender must be female, male, f or m (any case), the age an integer
from 1 to 100 years, and each file name may appear only once. An invalid row raises a ValueError
that names the file and the line number. A listed video missing on disk is dropped by
`load_annotations` with a warning that names the file, the line and the video.

The annotation table has one row per video and the columns `video` (file name, e.g.
"001_spontaneous_smile_1.mp4"), `path` (added by `load_annotations`), `subject` (int), `age`
(int, years), `gender` ("female" | "male") and `smile_type` ("spontaneous" | "posed"), where the
file's "deliberate" becomes "posed".
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

FILE_DETAILS_NAME = "UvA-NEMO_Smile_Database_File_Details.txt"
MAX_HEADER_LINES = 5
MIN_AGE = 1
MAX_AGE = 100
DETAIL_COLUMNS = ["video", "subject", "gender", "age", "smile_type"]
ANNOTATION_COLUMNS = ["video", "path", "subject", "age", "gender", "smile_type"]

_GENDERS = {"female": "female", "f": "female", "male": "male", "m": "male"}
_SMILE_TYPES = {"spontaneous": "spontaneous", "deliberate": "posed", "posed": "posed"}
_VIDEO_NAME = re.compile(r"^\S+\.(mp4|avi|mov|mkv)$", re.IGNORECASE)
_CANONICAL_NAME = re.compile(
    r"^(\d+)_(spontaneous|deliberate)_smile_\d+(\.[a-z0-9]+)?$", re.IGNORECASE
)
DEFAULT_EXTENSION = ".mp4"
_NUM_FIELDS = 5


def _split_fields(line: str) -> list[str]:
    fields = [field.strip() for field in line.split("\t")]
    fields = [field for field in fields if field]
    if len(fields) != _NUM_FIELDS:
        # Some copies replace tabs with runs of spaces.
        fields = line.split()
    return fields


def _is_data_row(fields: list[str]) -> bool:
    if not fields:
        return False
    return _VIDEO_NAME.match(fields[0]) is not None or _CANONICAL_NAME.match(fields[0]) is not None


def _parse_int(text: str, what: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: invalid {what} {text!r}, expected an integer") from None
    if not value.is_integer():
        raise ValueError(f"{where}: invalid {what} {text!r}, expected an integer")
    return int(value)


def parse_age(text: str, where: str) -> int:
    """Parse an age in whole years, such as "23" or "23.0", and check that it is valid.

    Args:
        text: The age as written in the annotation file, without padding.
        where: File name and line number that error messages start with.

    Returns:
        The age in years.

    Raises:
        ValueError: If `text` is not an integer or lies outside MIN_AGE to MAX_AGE (1 to 100).
    """
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value.is_integer() or not MIN_AGE <= value <= MAX_AGE:
        raise ValueError(
            f"{where}: invalid age {text!r}, expected whole years from {MIN_AGE} to {MAX_AGE}"
        )
    return int(value)


def parse_gender(text: str, where: str) -> str:
    """Map a gender written as female, male, f or m, in any case, to "female" or "male".

    Args:
        text: The gender as written in the annotation file, without padding.
        where: File name and line number that error messages start with.

    Returns:
        "female" or "male".

    Raises:
        ValueError: If `text` is not one of the accepted spellings.
    """
    gender = _GENDERS.get(text.lower())
    if gender is None:
        raise ValueError(f"{where}: invalid gender {text!r}, expected female, male, f or m")
    return gender


def _parse_row(fields: list[str], where: str) -> dict[str, object]:
    if len(fields) != _NUM_FIELDS:
        raise ValueError(
            f"{where}: expected {_NUM_FIELDS} fields (filename, subject, gender, age, "
            f"spontaneous|deliberate), got {len(fields)}: {fields!r}"
        )
    video, subject_text, gender_text, age_text, type_text = fields

    subject = _parse_int(subject_text, "subject", where)
    if subject < 0:
        raise ValueError(f"{where}: invalid subject {subject_text!r}, expected a number >= 0")

    gender = parse_gender(gender_text, where)
    age = parse_age(age_text, where)

    smile_type = _SMILE_TYPES.get(type_text.lower())
    if smile_type is None:
        raise ValueError(
            f"{where}: invalid smile type {type_text!r}, expected spontaneous or deliberate"
        )

    canonical = _CANONICAL_NAME.match(video)
    if canonical is not None and canonical.group(3) is None:
        video += DEFAULT_EXTENSION
    if canonical is not None:
        name_subject = int(canonical.group(1))
        name_type = _SMILE_TYPES[canonical.group(2).lower()]
        if name_subject != subject or name_type != smile_type:
            logger.warning(
                "%s: file name %s disagrees with its columns (subject %d, %s)",
                where, video, subject, smile_type,
            )

    return {
        "video": video,
        "subject": subject,
        "gender": gender,
        "age": age,
        "smile_type": smile_type,
    }


def _check_unique_videos(table: pd.DataFrame, lines: list[int], path: Path) -> None:
    duplicated = table["video"].duplicated()
    if duplicated.any():
        second = table.index[duplicated][0]
        name = table.at[second, "video"]
        repeats = [lines[i] for i in table.index[table["video"] == name]]
        raise ValueError(
            f"{path}, line {lines[second]}: video {name} is listed more than once, "
            f"on lines {repeats}"
        )


def check_subject_consistency(table: pd.DataFrame, lines: list[int], path: Path) -> None:
    """Raise when a subject has more than one age or gender.

    Args:
        table: Rows with the columns subject, age and gender, in file order with a 0-based
            index. The subject values appear in the message as they are.
        lines: Line number in `path` of each row of `table`.
        path: The annotation file, named in the message.

    Raises:
        ValueError: Naming the first conflicting subject and each of its lines with the value
            found there.
    """
    for column in ("age", "gender"):
        values_per_subject = table.groupby("subject", sort=False)[column].nunique()
        conflicting = values_per_subject[values_per_subject > 1]
        if not conflicting.empty:
            subject = conflicting.index[0]
            rows = table.index[table["subject"] == subject]
            detail = ", ".join(f"line {lines[i]}: {table.at[i, column]}" for i in rows)
            raise ValueError(
                f"{path}: subject {subject} has more than one {column} ({detail}). "
                f"Every subject needs a single {column}."
            )


def _decode_text(path: Path) -> str:
    """Read `path` as UTF-8 text, dropping a byte order mark."""
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not UTF-8 text ({error}); save the annotation file as UTF-8 and retry"
        ) from None


def _read_file_details_with_lines(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """Parse a details file into the table of `read_file_details` and each row's line number."""
    text = _decode_text(path)

    rows: list[dict[str, object]] = []
    line_numbers: list[int] = []
    header_lines = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = _split_fields(line)
        # A line shaped like a row (numeric subject and age) is parsed as one, so that a
        # misspelt first video name is reported instead of being skipped as a header line.
        looks_like_row = (
            len(fields) == 5 and fields[1].strip().isdigit() and fields[3].strip().isdigit()
        )
        if not rows and not _is_data_row(fields) and not looks_like_row:
            header_lines += 1
            if header_lines > MAX_HEADER_LINES:
                raise ValueError(
                    f"{path}, line {number}: expected a video row (filename ending in .mp4 "
                    f"and 4 more tab-separated fields) after at most {MAX_HEADER_LINES} header "
                    f"lines, got {line.strip()!r}"
                )
            continue
        rows.append(_parse_row(fields, f"{path}, line {number}"))
        line_numbers.append(number)

    if not rows:
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        raise ValueError(
            f"{path}: no video rows found; expected tab-separated lines of filename, subject, "
            f"gender, age, spontaneous|deliberate, but the first line is {first!r}"
        )

    table = pd.DataFrame(rows, columns=DETAIL_COLUMNS)
    table["subject"] = table["subject"].astype(int)
    table["age"] = table["age"].astype(int)
    _check_unique_videos(table, line_numbers, path)
    check_subject_consistency(table, line_numbers, path)
    logger.debug("Read %d videos of %d subjects from %s", len(table),
                 table["subject"].nunique(), path)
    return table, line_numbers


def read_file_details(path: str | Path) -> pd.DataFrame:
    """Parse a UvA-NEMO `File_Details` annotation file.

    Lines before the first row whose first field is a video file name count as a header (at
    most five non-blank lines). A name without an extension, such as "001_deliberate_smile_2", gets
    ".mp4". Blank lines are skipped. Values may be padded with spaces or separated by runs of
    spaces instead of tabs. LF, CRLF and CR line endings are all accepted, as is a UTF-8 byte
    order mark.

    Args:
        path: The `UvA-NEMO_Smile_Database_File_Details.txt` file.

    Returns:
        DataFrame with columns video (str), subject (int), gender ("female" | "male"), age (int,
        years) and smile_type ("spontaneous" | "posed"), one row per video in file order.

    Raises:
        FileNotFoundError: If `path` does not exist.
        ValueError: If a row has the wrong number of fields, an invalid subject, gender, age
            (valid: 1 to 100 years) or smile type, or a video listed before. The message names
            the file and the line number. Also raised if the file is not UTF-8, the header is
            longer than five lines, a subject has conflicting ages or genders, or the file
            lists no videos.
    """
    table, _ = _read_file_details_with_lines(Path(path))
    return table


def drop_missing_videos(
    table: pd.DataFrame, lines: list[int], listing: Path, none_found_message: str
) -> pd.DataFrame:
    """Drop the rows whose video file is missing on disk, with a warning for each.

    Each warning names the annotation file, the line and the video. A final warning counts
    the videos dropped.

    Args:
        table: Annotation rows with the columns video and path, with a 0-based index.
        lines: Line number in `listing` of each row of `table`.
        listing: The annotation file that lists the videos.
        none_found_message: Message of the FileNotFoundError raised when no video exists.

    Returns:
        The rows whose `path` is an existing file, in their order, with a fresh 0-based index.

    Raises:
        FileNotFoundError: If none of the videos exists.
    """
    exists = table["path"].map(lambda p: Path(p).is_file())
    if not exists.any():
        raise FileNotFoundError(none_found_message)

    missing = table.index[~exists]
    for row in missing:
        video_path = Path(table.at[row, "path"])
        logger.warning("%s, line %d: video %s is missing from %s, dropped",
                       listing, lines[row], table.at[row, "video"], video_path.parent)
    if len(missing):
        logger.warning("Dropped %d of %d videos listed in %s because their files are missing",
                       len(missing), len(table), listing)
    return table.loc[exists].reset_index(drop=True)


def load_annotations(root: str | Path, videos_dir: str = "videos") -> pd.DataFrame:
    """Load the annotation table for a dataset laid out like UvA-NEMO.

    Reads `root/UvA-NEMO_Smile_Database_File_Details.txt` and adds each video's path under
    `root/videos_dir`. Videos listed in the file but missing on disk are dropped, each with
    a warning naming the details file, the line and the video, and the number dropped is
    logged too.

    Args:
        root: Dataset folder containing the details file and the videos folder.
        videos_dir: Folder with the video files, relative to `root`.

    Returns:
        DataFrame with columns video, path, subject, age, gender and smile_type, one row per
        video found on disk, in file order, with a fresh 0-based index.

    Raises:
        FileNotFoundError: If the details file is missing, or if none of the listed videos
            exists under `root/videos_dir`.
        ValueError: If the details file is invalid (see `read_file_details`).
    """
    root = Path(root)
    details_path = root / FILE_DETAILS_NAME
    if not details_path.is_file():
        raise FileNotFoundError(
            f"{FILE_DETAILS_NAME} not found in {root}. Put the UvA-NEMO details file there "
            f"and the videos in {root / videos_dir}, or generate the synthetic dataset into "
            f"{root} with siamlib.data.synthetic.generate_dataset."
        )
    table, lines = _read_file_details_with_lines(details_path)

    video_root = root / videos_dir
    table["path"] = [str(video_root / name) for name in table["video"]]
    table = drop_missing_videos(
        table, lines, details_path,
        f"none of the {len(table)} videos listed in {details_path} exists in {video_root}. "
        f"Put the video files there or pass videos_dir.",
    )

    table = table[ANNOTATION_COLUMNS]
    logger.info("Loaded %d videos of %d subjects from %s", len(table),
                table["subject"].nunique(), root)
    return table
