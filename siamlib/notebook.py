"""Remove run-to-run noise from an executed notebook so that reruns reproduce it byte for byte.

papermill and nbclient record start and end times, durations and the environment of each run
in the notebook's metadata, papermill gives its parameters cell a random id, and progress bars
write rates and elapsed times to stderr. None of it is a result, and all of it would make git
and DVC see a change on every rerun. Usage::

    python -m siamlib.notebook reports/notebooks/01_synthetic.ipynb
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import nbformat

# Keys of papermill's and nbclient's metadata that change from run to run.
_VOLATILE_KEYS = ("start_time", "end_time", "duration", "environment_variables")
# A stderr line written by a tqdm progress bar: "42%|████  | 5/12 [00:01<00:02, 3.1it/s]".
_PROGRESS_LINE = re.compile(r"\|\s*\d+/\d+\s*\[[^\]]*\]|\d+it \[")
# Terminal escape sequences, e.g. the cursor-up codes that nested progress bars write.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _scrub_stream(text: str) -> str:
    """Drop progress-bar lines and blank lines, keeping other stderr output such as warnings."""
    lines = re.split(r"(?<=\n)|\r", text)
    return "".join(
        line
        for line in lines
        if _ANSI_ESCAPE.sub("", line).strip() and not _PROGRESS_LINE.search(line)
    )


def _merge_streams(outputs: list) -> list:
    """Join consecutive stream outputs of the same name.

    The kernel sends a stream in chunks whose boundaries depend on timing, so the same text
    can arrive as one output in one run and as two in the next.
    """
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and output.get("output_type") == "stream"
            and previous.get("output_type") == "stream"
            and output.get("name") == previous.get("name")
        ):
            previous["text"] = previous.get("text", "") + output.get("text", "")
        else:
            merged.append(output)
    return merged


def scrub_notebook(path: str | os.PathLike) -> None:
    """Rewrite an executed notebook in place without timings and progress bars.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"executed notebook not found: {path}")
    notebook = nbformat.read(path, as_version=4)

    papermill_metadata = notebook.metadata.get("papermill", {})
    for key in _VOLATILE_KEYS:
        papermill_metadata.pop(key, None)

    for cell in notebook.cells:
        # papermill gives the cell it inserts a random id on every run.
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"
        cell.metadata.pop("execution", None)
        cell_papermill = cell.metadata.get("papermill", {})
        for key in _VOLATILE_KEYS:
            cell_papermill.pop(key, None)
        if cell.cell_type != "code":
            continue
        kept = []
        for output in _merge_streams(cell.get("outputs", [])):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["text"] = _scrub_stream(output.get("text", ""))
                if not output["text"].strip():
                    continue
            kept.append(output)
        cell["outputs"] = kept

    temporary = path.with_name(path.name + ".tmp")
    nbformat.write(notebook, temporary)
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", help="executed .ipynb files to rewrite in place")
    arguments = parser.parse_args(argv)
    for notebook in arguments.notebooks:
        scrub_notebook(notebook)


if __name__ == "__main__":
    main()
