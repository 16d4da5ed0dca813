"""Published numbers on UvA-NEMO smiles, set beside this study's, with the dataset on every row.

The published rows are the SIAM paper's result (Pei et al., IEEE TIP 29, 2020), the fusion of
appearance and smile dynamics (Dibeklioglu et al., ACM Multimedia 2012), and the human
estimates cited in Dibeklioglu et al., IEEE TIP 24(6), 2015. The mean-age row follows from
the database's annotations: 400 subjects aged 8 to 76. This study's rows carry the label of
the dataset they were measured on, so a result on the synthetic benchmark is never read as a
UvA-NEMO result.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

UVANEMO = "UvA-NEMO Smile Database"
COLUMNS = ("result", "dataset", "MAE (years)", "source")

# (result, MAE as printed, source)
PUBLISHED: tuple[tuple[str, str, str], ...] = (
    ("SIAM (Pei et al.)", "4.74", "Pei et al., IEEE TIP 29 (2020), summary"),
    ("Appearance + smile dynamics fusion", "4.81 (4.87)", "Dibeklioglu et al., ACM MM 2012"),
    ("Humans, faces over 15", "7.2-7.4", "cited in Dibeklioglu et al., IEEE TIP 24(6) (2015)"),
    ("Predict the mean age", "14.24", "UvA-NEMO annotation statistics"),
)

# This study's methods set beside the published rows, as (display name, method name).
COMPARED: tuple[tuple[str, str], ...] = (
    ("SIAM (this study)", "SIAM"),
    ("SVR on dynamics + appearance (this study's reimplementation)", "SVR (dynamics+appearance)"),
    ("Predict the mean training age (this study)", "Mean training age"),
)


def literature_table(methods: dict[str, dict[str, Any]], dataset_label: str) -> pd.DataFrame:
    """Return the published rows followed by this study's rows for the same approaches.

    Args:
        methods: The ``methods`` part of reports/metrics.json (method name to its metrics,
            with ``mae``, ``mae_low`` and ``mae_high``).
        dataset_label: Label of the dataset this study ran on, written on its rows.

    Returns:
        Columns result, dataset, MAE (years), source. This study's MAE is printed with its
        subject-bootstrap interval. Methods that did not run are left out.
    """
    rows = [dict(zip(COLUMNS, (result, UVANEMO, mae, source))) for result, mae, source in PUBLISHED]
    for display, method in COMPARED:
        if method not in methods:
            continue
        values = methods[method]
        mae = f"{values['mae']:.2f}"
        if values.get("mae_low") is not None and values.get("mae_high") is not None:
            mae += f" [{values['mae_low']:.2f}, {values['mae_high']:.2f}]"
        rows.append(dict(zip(COLUMNS, (display, dataset_label, mae, "reports/metrics.json"))))
    return pd.DataFrame(rows, columns=list(COLUMNS))
