"""Markdown tables of the reports (siamlib.tables)."""

import pandas as pd

from siamlib.tables import format_cell, markdown_table


def test_format_cell_numbers_and_missing():
    assert format_cell(1.23456) == "1.235"
    assert format_cell(float("nan")) == "n/a"
    assert format_cell(12) == "12"
    assert format_cell("a|b") == "a\\|b"


def test_markdown_table_layout():
    frame = pd.DataFrame({"variant": ["siam", "none"], "MAE": [9.6264, float("nan")]})
    lines = markdown_table(frame).split("\n")
    assert lines[0] == "| variant | MAE |"
    assert lines[1] == "|---|---|"
    assert lines[2] == "| siam | 9.626 |"
    assert lines[3] == "| none | n/a |"
