"""ACRO's per-cell decisions on the tables the differential test generated.

Usage: acro_reference.py IN.json OUT.json

IN.json: {"tables": [{"id": str, "statistic": "count"|"sum"|"mean",
                      "params": {"threshold", "zeros_disclosive", "nk_n", "nk_k", "p_ratio"},
                      "rows": [[row_key, col_key, value], ...]}]}
OUT.json: {"acro_version": str, "seconds": float,
           "tables": {id: {"row|col": {"threshold": bool, "zeros": bool|null,
                                       "nk": bool|null, "pratio": bool|null}}}}

Each table goes through ACRO's public `crosstab` (suppression off), with the session's risk
appetite set to the table's parameters; a decision is true when ACRO lists the cell under that
check (MinimumThresholdCheck, PresenceOfZeroCheck, NKCheck, PPercentCheck). `seconds` is the time
spent inside `crosstab` alone.
"""

import json
import logging
import sys
import time

import pandas as pd
from acro import ACRO
from acro.version import __version__

CHECKS = {
    "threshold": "MinimumThresholdCheck",
    "zeros": "PresenceOfZeroCheck",
    "nk": "NKCheck",
    "pratio": "PPercentCheck",
}


def decide(session, table):
    params = table["params"]
    appetite = session.sdc_checks.risk_appetite
    appetite["safe_threshold"] = params["threshold"]
    appetite["zeros_are_disclosive"] = params["zeros_disclosive"]
    appetite["safe_nk_n"] = params["nk_n"]
    appetite["safe_nk_k"] = params["nk_k"]
    appetite["safe_pratio_p"] = params["p_ratio"]
    frame = pd.DataFrame(table["rows"], columns=["row", "col", "value"])
    frame["value"] = frame["value"].astype("int64")
    start = time.perf_counter()
    if table["statistic"] == "count":
        result = session.crosstab(frame["row"], frame["col"])
    else:
        result = session.crosstab(frame["row"], frame["col"], values=frame["value"], aggfunc=table["statistic"])
    elapsed = time.perf_counter() - start
    record = list(session.results.results.values())[-1]
    cells = record.sdc["cells"]
    decisions = {}
    for name, check in CHECKS.items():
        ran = check in cells
        flagged = {tuple(pos) for pos in cells.get(check, [])}
        for i, row in enumerate(result.index):
            for j, col in enumerate(result.columns):
                cell = decisions.setdefault(f"{row}|{col}", {})
                cell[name] = ((i, j) in flagged) if ran else None
    return decisions, elapsed


def main():
    logging.disable(logging.CRITICAL)
    with open(sys.argv[1], encoding="utf-8") as handle:
        tables = json.load(handle)["tables"]
    session = ACRO(suppress=False)
    out = {"acro_version": __version__, "seconds": 0.0, "tables": {}}
    for table in tables:
        decisions, elapsed = decide(session, table)
        out["tables"][table["id"]] = decisions
        out["seconds"] += elapsed
        # Keep the session's record of outputs from growing with every table.
        session.results.results.clear()
    with open(sys.argv[2], "w", encoding="utf-8") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main()
