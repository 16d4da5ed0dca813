"""Scrubbing run-to-run noise from executed notebooks."""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from siamlib.notebook import main, project_root, scrub_notebook, select_parameters, use_project_root


def make_executed_notebook(duration: float, rate: str, chunked: bool) -> nbformat.NotebookNode:
    notebook = new_notebook()
    notebook.metadata["papermill"] = {
        "start_time": f"2026-01-01T00:00:{duration:02.0f}",
        "end_time": "2026-01-01T00:01:00",
        "duration": duration,
        "parameters": {"seed": 0},
        "environment_variables": {"HOME": "/somewhere"},
    }

    cell = new_code_cell("train()", execution_count=1)
    cell["id"] = "train-cell"
    cell.metadata["papermill"] = {"duration": duration, "status": "completed"}
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:01"}
    cell.outputs = [
        new_output("stream", name="stdout", text="MAE 4.2\n"),
        new_output(
            "stream",
            name="stderr",
            text=f"epochs:  50%|█████     | 5/10 [00:0{int(duration)}<00:05, {rate}it/s]\r"
            "UserWarning: something worth keeping\n",
        ),
        new_output("stream", name="stderr", text=f"folds: 100%|██| 2/2 [00:03<00:00, {rate}it/s]\n"),
        new_output("stream", name="stderr", text="\x1b[A\n\x1b[A\n"),
        # A closing bar's padding, as wide as its timing text, then the next log line.
        new_output("stream", name="stderr", text=" " * int(duration * 10) + "\x1b[AINFO best epoch 3\n"),
    ]
    notebook.cells.append(cell)

    injected = new_code_cell("seed = 1")
    injected["id"] = f"random-{rate}"
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.append(injected)

    # The same log text, sent in one chunk or in two depending on timing.
    logs = new_code_cell("generate()", execution_count=2)
    logs["id"] = "log-cell"
    if chunked:
        logs.outputs = [
            new_output("stream", name="stderr", text="INFO started\n"),
            new_output("stream", name="stderr", text="\nINFO finished\n"),
        ]
    else:
        logs.outputs = [new_output("stream", name="stderr", text="INFO started\nINFO finished\n")]
    notebook.cells.append(logs)
    return notebook


def test_scrub_makes_runs_identical(tmp_path):
    first, second = tmp_path / "first.ipynb", tmp_path / "second.ipynb"
    nbformat.write(make_executed_notebook(3.0, "1.5", chunked=False), first)
    nbformat.write(make_executed_notebook(7.0, "2.9", chunked=True), second)
    assert first.read_bytes() != second.read_bytes()

    scrub_notebook(first)
    scrub_notebook(second)

    assert first.read_bytes() == second.read_bytes()


def test_scrub_keeps_results_and_warnings(tmp_path):
    path = tmp_path / "run.ipynb"
    nbformat.write(make_executed_notebook(3.0, "1.5", chunked=True), path)
    scrub_notebook(path)
    notebook = nbformat.read(path, as_version=4)

    assert notebook.metadata["papermill"] == {"parameters": {"seed": 0}}
    outputs = notebook.cells[0].outputs
    assert [output["name"] for output in outputs] == ["stdout", "stderr"]
    assert outputs[0]["text"] == "MAE 4.2\n"
    assert outputs[1]["text"] == "UserWarning: something worth keeping\nINFO best epoch 3\n"
    assert "execution" not in notebook.cells[0].metadata
    assert notebook.cells[1]["id"] == "injected-parameters"
    assert notebook.cells[2].outputs[0]["text"] == "INFO started\nINFO finished\n"


def test_scrub_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ipynb"):
        scrub_notebook(tmp_path / "missing.ipynb")


def test_select_parameters_nested(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 3\nsplits:\n  num_folds: 5\n  validation_fraction: 0.2\nmodel:\n  dropout: 0.1\n")
    selected = select_parameters(path, ["seed", "splits.num_folds"])
    assert selected == {"seed": 3, "splits": {"num_folds": 5}}


def test_select_parameters_missing_key(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 3\n")
    with pytest.raises(KeyError, match="splits.num_folds"):
        select_parameters(path, ["splits.num_folds"])


@pytest.mark.parametrize("bar", ["", "\rSVR:  40%|████      | 2/5 [00:01<00:02, 1.9it/s]",
                                 "\r3it [00:01, 2.2it/s]"])
def test_scrub_keeps_log_line_after_bar(tmp_path, bar):
    # A bar leaves its line open, so a log line written next follows it on the same line.
    path = tmp_path / "run.ipynb"
    notebook = new_notebook()
    cell = new_code_cell("run()", execution_count=1)
    cell.outputs = [new_output("stream", name="stderr",
                               text=f"INFO fold 3\n{bar}INFO fold 4\n")]
    notebook.cells.append(cell)
    nbformat.write(notebook, path)
    scrub_notebook(path)
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert outputs[0]["text"] == "INFO fold 3\nINFO fold 4\n"


def test_scrub_with_html_writes_the_same_page_for_the_same_run(tmp_path):
    pages = []
    for name, duration, rate in (("first", 3.0, "1.5"), ("second", 7.0, "2.9")):
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(make_executed_notebook(duration, rate, chunked=False), path)
        page = tmp_path / "html" / f"{name}.html"
        main(["scrub", str(path), "--html", str(page)])
        pages.append(page.read_text())
    assert pages[0] == pages[1]
    assert "MAE 4.2" in pages[0]
    assert "UserWarning: something worth keeping" in pages[0]
    assert "it/s" not in pages[0]


def test_scrub_html_needs_one_notebook(tmp_path):
    with pytest.raises(SystemExit):
        main(["scrub", str(tmp_path / "a.ipynb"), str(tmp_path / "b.ipynb"), "--html", "x.html"])


def test_use_project_root_moves_from_notebooks_folder(tmp_path, monkeypatch, caplog):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "siamlib").mkdir()
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    with caplog.at_level("WARNING"):
        use_project_root()
    assert Path.cwd() == tmp_path.resolve()
    assert "dvc repro" in caplog.text
    # Already at the root, as under DVC: no move, no warning.
    caplog.clear()
    use_project_root()
    assert Path.cwd() == tmp_path.resolve()
    assert caplog.text == ""


def test_project_root_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="dvc.yaml"):
        project_root(tmp_path)
