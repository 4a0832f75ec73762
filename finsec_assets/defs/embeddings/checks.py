"""Checks on pooled_embeddings, run inside the asset's step on exactly the quarter just written."""

from collections import Counter

import dagster as dg

from ..common import md_list
import numpy as np
import pandas as pd

# Rows are documented as unit length (finsec_assets.ml.embeddings): allow float32 rounding only.
UNIT_NORM_TOLERANCE = 1e-3

pooled_embeddings_checks = [
    dg.AssetCheckSpec("vectors_finite_and_unit_norm", asset="pooled_embeddings", blocking=True,
                      description="Every embedding has the row's dim, only finite values, and L2 norm 1 (as documented)."),
    dg.AssetCheckSpec("every_nonempty_section_embedded", asset="pooled_embeddings",
                      description="Each chosen section with text has exactly one row; empty sections have none."),
]


def vectors_finite_and_unit_norm(df: pd.DataFrame) -> dg.AssetCheckResult:
    bad, norms = [], []
    for rec in df[["accession", "item", "dim", "embedding"]].to_dict("records"):
        vector = np.asarray(rec["embedding"], dtype=np.float64)
        where = f"{rec['accession']} item {rec['item']}"
        if vector.shape != (int(rec["dim"]),):
            bad.append(f"{where}: shape {vector.shape}, dim column says {rec['dim']}")
        elif not np.isfinite(vector).all():
            bad.append(f"{where}: {int((~np.isfinite(vector)).sum())} non-finite values")
        else:
            norm = float(np.linalg.norm(vector))
            norms.append(norm)
            if abs(norm - 1.0) > UNIT_NORM_TOLERANCE:
                bad.append(f"{where}: norm {norm:.6f}")
    worst = max((abs(n - 1.0) for n in norms), default=0.0)
    return dg.AssetCheckResult(asset_key="pooled_embeddings", check_name="vectors_finite_and_unit_norm", passed=not bad,
                               metadata={"rows": len(df), "failing": len(bad), "max_norm_error": worst, "details": md_list(bad)})


def every_nonempty_section_embedded(df: pd.DataFrame, nonempty: pd.DataFrame, empty: pd.DataFrame) -> dg.AssetCheckResult:
    """``nonempty``/``empty``: the chosen sections (accession, item) with and without sentences."""
    have = list(zip(df["accession"], df["item"]))
    want = set(zip(nonempty["accession"], nonempty["item"]))
    blank = set(zip(empty["accession"], empty["item"]))
    missing = sorted(want - set(have))
    extra = sorted(set(have) - want)
    duplicated = sorted(k for k, n in Counter(have).items() if n > 1)
    problems = ([f"missing {a} item {i}" for a, i in missing] + [f"unexpected {a} item {i}" for a, i in extra]
                + [f"duplicated {a} item {i}" for a, i in duplicated]
                + [f"empty section has a row: {a} item {i}" for a, i in sorted(blank & set(have))])
    return dg.AssetCheckResult(asset_key="pooled_embeddings", check_name="every_nonempty_section_embedded",
                               passed=not problems,
                               metadata={"sections_with_text": len(want), "empty_sections": len(blank),
                                         "rows": len(df), "problems": md_list(problems)})
