"""Helpers for the notebook stages: select their parameters and scrub their executed copies.

Each DVC stage passes its notebook only the params.yaml keys that the stage declares, so an
executed notebook shows exactly the values it ran with::

    python -m siamlib.notebook params params.yaml seed synthetic    # JSON for papermill -y


papermill and nbclient record start and end times, durations and the environment of each run
in the notebook's metadata, papermill gives its parameters cell a random id, and progress bars
write rates and elapsed times to stderr. None of it is a result, and all of it would make git
and DVC see a change on every rerun, so the executed copy is scrubbed in place::

    python -m siamlib.notebook scrub reports/notebooks/01_synthetic.ipynb

and, with ``--html``, rendered to a page for readers without Jupyter::

    python -m siamlib.notebook scrub reports/notebooks/01_synthetic.ipynb --html reports/html/01_synthetic.html

Opened in JupyterLab, a notebook's kernel starts in notebooks/, while its paths are relative
to the project root, where DVC runs it; :func:`use_project_root` moves there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

# Keys of papermill's and nbclient's metadata that change from run to run.
_VOLATILE_KEYS = ("start_time", "end_time", "duration", "environment_variables")
# A stderr line written by a tqdm progress bar: "42%|████  | 5/12 [00:01<00:02, 3.1it/s]".
_PROGRESS_LINE = re.compile(r"\|\s*\d+/\d+\s*\[[^\]]*\]|\d+it \[[^\]]*\]")
# Terminal escape sequences, e.g. the cursor-up codes that nested progress bars write, with
# the blank padding that a closing bar writes before them (its width follows the bar's text).
_ANSI_ESCAPE = re.compile(r"[ \t]*\x1b\[[0-9;]*[A-Za-z]")


def _scrub_stream(text: str) -> str:
    """Drop progress bars and blank lines, keeping other stderr output such as warnings.

    A bar does not end its line, so a log line written after a bar update follows the bar on
    the same line; the text after the bar is kept.
    """
    kept = []
    for line in re.split(r"(?<=\n)|\r", text):
        line = _ANSI_ESCAPE.sub("", line)
        bars = list(_PROGRESS_LINE.finditer(line))
        if bars:
            line = line[bars[-1].end():]
        if line.strip():
            kept.append(line)
    return "".join(kept)


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
    # Imported here: nbformat takes over a second to import, and every stage's notebook
    # imports this module for use_project_root and every stage command for `params`.
    import nbformat

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


def render_html(notebook_path: str | os.PathLike, html_path: str | os.PathLike) -> None:
    """Render an executed notebook to a standalone HTML page (JupyterLab's look, images inline).

    The same notebook gives the same bytes, so a rerun that reproduces the notebook reproduces
    its page. The file is written to a temporary name and renamed.

    Raises:
        FileNotFoundError: If ``notebook_path`` does not exist.
    """
    import nbformat
    from nbconvert import HTMLExporter

    notebook_path, html_path = Path(notebook_path), Path(html_path)
    if not notebook_path.is_file():
        raise FileNotFoundError(f"executed notebook not found: {notebook_path}")
    body, _resources = HTMLExporter(template_name="lab").from_notebook_node(
        nbformat.read(notebook_path, as_version=4)
    )
    html_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = html_path.with_name(html_path.name + ".tmp")
    temporary.write_text(body, encoding="utf-8")
    os.replace(temporary, html_path)


def project_root(start: str | os.PathLike | None = None) -> Path:
    """Return this project's root: the nearest folder at or above ``start`` (default: the
    working directory) that contains both dvc.yaml and siamlib/.

    Raises:
        FileNotFoundError: If no such folder exists.
    """
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "dvc.yaml").is_file() and (folder / "siamlib").is_dir():
            return folder
    raise FileNotFoundError(
        f"no project root (a folder with dvc.yaml and siamlib/) at or above {start}; "
        "open the notebooks from a clone of this repository"
    )


def use_project_root() -> None:
    """Make the project root the working directory, so a notebook's relative paths resolve.

    DVC runs every stage from the root, so there this changes nothing. In JupyterLab the
    kernel starts in notebooks/; there it moves to the root and warns that the notebook
    writes its stage's outputs with its own parameter defaults (the tiny profile), which
    ``dvc status`` then lists and ``dvc repro`` regenerates. It returns nothing, so that a
    notebook cell ending with the call shows no output.
    """
    root = project_root()
    if Path.cwd().resolve() != root:
        os.chdir(root)
        logger.warning(
            "Working directory is now the project root %s. Run by hand, this notebook "
            "overwrites its stage's outputs with results of its parameter defaults (the tiny "
            "profile); `dvc status` lists them and `dvc repro` regenerates them.", root.name,
        )


def select_parameters(params_path: str | os.PathLike, keys: Sequence[str]) -> dict[str, Any]:
    """Return the entries of a params file named by ``keys``, nested as in the file.

    A key is a top-level name (``"synthetic"``) or a dotted path (``"splits.num_folds"``),
    the same notation as a stage's ``params:`` list in dvc.yaml.

    Raises:
        KeyError: If a key is not in the file; the message names the key and the file.
    """
    params = yaml.safe_load(Path(params_path).read_text()) or {}
    selected: dict[str, Any] = {}
    for key in keys:
        value: Any = params
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise KeyError(f"parameter {key!r} not found in {params_path}")
            value = value[part]
        target = selected
        *parents, last = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return selected


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    params = commands.add_parser("params", help="print the selected parameters as JSON")
    params.add_argument("params_file", help="the parameters file, e.g. params.yaml")
    params.add_argument("keys", nargs="+", help="top-level or dotted keys, e.g. seed splits.num_folds")
    scrub = commands.add_parser("scrub", help="remove timings and progress bars in place")
    scrub.add_argument("notebooks", nargs="+", help="executed .ipynb files to rewrite")
    scrub.add_argument("--html", metavar="PAGE",
                       help="also render the (single) scrubbed notebook to this HTML file")
    arguments = parser.parse_args(argv)

    if arguments.command == "params":
        print(json.dumps(select_parameters(arguments.params_file, arguments.keys)))
        return
    if arguments.html and len(arguments.notebooks) != 1:
        parser.error("--html renders one notebook; give exactly one")
    for notebook in arguments.notebooks:
        scrub_notebook(notebook)
    if arguments.html:
        render_html(arguments.notebooks[0], arguments.html)


if __name__ == "__main__":
    main()
