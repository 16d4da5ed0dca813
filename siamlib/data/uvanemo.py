"""Read the UvA-NEMO Smile Database annotation file into the project's annotation table.

`UvA-NEMO_Smile_Database_File_Details.txt` lists one video a line, tab-separated:
filename, subject, gender, age, spontaneous|deliberate. Copies in circulation differ in whether
values are padded with spaces, whether a header of up to five lines precedes the rows, and in
line endings (LF or CRLF). This module accepts all of these variants.

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
MAX_AGE = 120
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

    gender = _GENDERS.get(gender_text.lower())
    if gender is None:
        raise ValueError(
            f"{where}: invalid gender {gender_text!r}, expected female, male, f or m"
        )

    age = _parse_int(age_text, "age", where)
    if not 0 < age <= MAX_AGE:
        raise ValueError(f"{where}: invalid age {age_text!r}, expected 1 to {MAX_AGE} years")

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


def _check_subjects(table: pd.DataFrame, lines: list[int], path: Path) -> None:
    """Raise when a video repeats or a subject has more than one age or gender."""
    duplicated = table["video"].duplicated(keep=False)
    if duplicated.any():
        first = table.index[duplicated][0]
        name = table.at[first, "video"]
        repeats = [lines[i] for i in table.index[table["video"] == name]]
        raise ValueError(f"{path}: video {name} is listed more than once, on lines {repeats}")

    for column in ("age", "gender"):
        values_per_subject = table.groupby("subject")[column].nunique()
        conflicting = values_per_subject[values_per_subject > 1]
        if not conflicting.empty:
            subject = int(conflicting.index[0])
            rows = table.index[table["subject"] == subject]
            detail = ", ".join(f"line {lines[i]}: {table.at[i, column]}" for i in rows)
            raise ValueError(
                f"{path}: subject {subject} has more than one {column} ({detail}). "
                f"Every subject needs a single {column}."
            )


def read_file_details(path: str | Path) -> pd.DataFrame:
    """Parse a UvA-NEMO `File_Details` annotation file.

    Lines before the first row whose first field is a video file name count as a header (at
    most five non-blank lines). A name without an extension, such as "001_deliberate_smile_2", gets
    ".mp4". Blank lines are skipped. Values may be padded with spaces, and LF, CRLF
    and CR line endings are all accepted, as is a UTF-8 byte order mark.

    Args:
        path: The `UvA-NEMO_Smile_Database_File_Details.txt` file.

    Returns:
        DataFrame with columns video (str), subject (int), gender ("female" | "male"), age (int,
        years) and smile_type ("spontaneous" | "posed"), one row per video in file order.

    Raises:
        FileNotFoundError: If `path` does not exist.
        ValueError: If a row has the wrong number of fields or an invalid subject, gender, age
            or smile type; the message names the file and line number. Also if the header is
            longer than five lines, a video is listed twice, a subject has conflicting ages or
            genders, or the file lists no videos.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not UTF-8 text ({error}); save the annotation file as UTF-8 and retry"
        ) from None

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
    _check_subjects(table, line_numbers, path)
    logger.debug("Read %d videos of %d subjects from %s", len(table),
                 table["subject"].nunique(), path)
    return table


def load_annotations(root: str | Path, videos_dir: str = "videos") -> pd.DataFrame:
    """Load the annotation table for a dataset laid out like UvA-NEMO.

    Reads `root/UvA-NEMO_Smile_Database_File_Details.txt` and adds each video's path under
    `root/videos_dir`. Videos listed in the file but missing on disk are logged by file name
    and dropped, and the number dropped is logged too.

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
    table = read_file_details(details_path)

    video_root = root / videos_dir
    table["path"] = [str(video_root / name) for name in table["video"]]
    exists = table["path"].map(lambda p: Path(p).is_file())
    missing = table.loc[~exists, "video"].tolist()
    if len(missing) == len(table):
        raise FileNotFoundError(
            f"none of the {len(table)} videos listed in {details_path} exists in {video_root}. "
            f"Put the video files there or pass videos_dir."
        )
    if missing:
        for name in missing:
            logger.warning("Video %s listed in %s is missing from %s, dropped",
                           name, details_path.name, video_root)
        logger.warning("Dropped %d of %d listed videos that are missing from %s",
                       len(missing), len(table), video_root)

    table = table.loc[exists, ANNOTATION_COLUMNS].reset_index(drop=True)
    logger.info("Loaded %d videos of %d subjects from %s", len(table),
                table["subject"].nunique(), root)
    return table
