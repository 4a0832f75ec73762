"""Agreement of extracted facts with SEC's own reading of the same filing (the companyfacts API).

SEC's ``api/xbrl/companyfacts/CIK##########.json`` lists, per concept and unit,
every non-dimensional fact each filing reported (``accn``), with its period and
value after scale and sign. Each of those facts must be among ours with the same
value, period and unit: this is the correctness check of the reader.
"""

from __future__ import annotations

import gzip
import json
import math

import pandas as pd

__all__ = ["load_companyfacts", "companyfacts_for_accession", "agreement"]


def load_companyfacts(data: bytes | str | dict) -> dict:
    """The companyfacts JSON (bytes, gzip accepted, str or already parsed)."""
    if isinstance(data, dict):
        return data
    if isinstance(data, bytes) and data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return json.loads(data)


def companyfacts_for_accession(companyfacts: dict, accession: str) -> pd.DataFrame:
    """SEC's facts of one filing: concept (prefix:name), unit, period_start ('' for instants), period_end, value."""
    rows = []
    for taxonomy, concepts in (companyfacts.get("facts") or {}).items():
        for name, body in concepts.items():
            for unit, entries in (body.get("units") or {}).items():
                for entry in entries:
                    if entry.get("accn") != accession:
                        continue
                    rows.append({"concept": f"{taxonomy}:{name}", "unit": unit, "period_start": entry.get("start", "") or "",
                                 "period_end": entry.get("end", ""), "value": float(entry["val"]), "frame": entry.get("frame")})
    columns = ["concept", "unit", "period_start", "period_end", "value", "frame"]
    return pd.DataFrame(rows, columns=columns).drop_duplicates(["concept", "unit", "period_start", "period_end", "value"])


def _same(a: float, b: float) -> bool:
    return a == b or (not math.isnan(a) and abs(a - b) <= 1e-9 * max(1.0, abs(b)))


SEC_UNIT_CHARS = 20


def _sec_key(concept: str, unit: str | None, start: str | None, end: str | None) -> tuple:
    """Our fact's key as companyfacts writes it: unit names cut at 20 characters ('goodwillReportingUnit' is
    'goodwillReportingUni' there) and a duration that starts and ends on one day shown as an instant."""
    start, end = start or "", end or ""
    return concept, (unit or "")[:SEC_UNIT_CHARS], "" if start == end else start, end


def agreement(facts: pd.DataFrame, sec_facts: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """How many of SEC's facts are found in ``facts`` (extract_facts output) with equal value, period and unit.

    Returns (summary, misses); a miss says whether the concept/period/unit was found with another value.
    """
    ours = facts[facts["is_numeric"] & facts["dimensions"].map(lambda d: not d)]
    index: dict[tuple, list[float]] = {}
    for concept, unit, start, end, value in zip(ours["concept"], ours["unit"], ours["period_start"], ours["period_end"],
                                                ours["value"]):
        index.setdefault(_sec_key(concept, unit, start, end), []).append(float(value))
    misses = []
    found = 0
    for row in sec_facts.itertuples(index=False):
        values = index.get(_sec_key(row.concept, row.unit, row.period_start, row.period_end))
        if values and any(_same(v, row.value) for v in values):
            found += 1
        else:
            misses.append({**row._asdict(), "ours": values or [], "reason": "other value" if values else "not found"})
    total = len(sec_facts)
    summary = {"sec_facts": total, "found": found, "agreement": found / total if total else float("nan")}
    return summary, pd.DataFrame(misses)
