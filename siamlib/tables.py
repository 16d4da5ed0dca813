"""Markdown tables of the reports, formatted the same way wherever they are written."""

from __future__ import annotations

import pandas as pd


def format_cell(value: object, decimals: int = 3) -> str:
    """Format one value: floats with `decimals` decimals, "n/a" for NaN, others as text."""
    if isinstance(value, float):
        return "n/a" if pd.isna(value) else f"{value:.{decimals}f}"
    return str(value).replace("|", "\\|")


def markdown_table(frame: pd.DataFrame, decimals: int = 3) -> str:
    """Return `frame` as a Markdown table, one row per row of the frame, with `format_cell`."""
    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    lines = [header, "|" + "---|" * len(frame.columns)]
    for values in frame.itertuples(index=False):
        lines.append("| " + " | ".join(format_cell(value, decimals) for value in values) + " |")
    return "\n".join(lines)
