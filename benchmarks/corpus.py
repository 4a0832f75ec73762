"""The benchmarks' shared corpus reader: every 10-K/10-Q primary document of ../shared/edgar (or the sample)."""

from __future__ import annotations

import csv
from pathlib import Path

FORMS = ("10-K", "10-Q")


def primary_documents(edgar_dir: Path) -> list[tuple[Path, tuple[str, ...]]]:
    """(path, forms to try) of every 10-K/10-Q primary document, once each."""
    manifest = edgar_dir / "MANIFEST.tsv"
    if manifest.exists():
        seen, out = set(), []
        with open(manifest, newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                if row["form"] in FORMS and row["sha256"] not in seen:
                    seen.add(row["sha256"])
                    out.append((edgar_dir / row["path"], (row["form"],)))
        return out
    # The bundled sample has no manifest: try both forms, keep what extracts.
    return [(path, FORMS) for path in sorted(edgar_dir.glob("Archives/edgar/data/*/*/*.gz"))]
