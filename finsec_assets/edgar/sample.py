"""Facts about the bundled offline sample."""

from __future__ import annotations

import datetime as dt
import json

from .client import SAMPLE_DIR
from .parsing import quarter_of


def sample_quarters() -> list[str]:
    """Quarter partition keys that hold at least one bundled 10-K/10-Q."""
    quarters = set()
    for path in (SAMPLE_DIR / "submissions").glob("CIK*.json"):
        data = json.loads(path.read_text())
        arrays = data["filings"]["recent"] if "filings" in data else data
        for day, form in zip(arrays["filingDate"], arrays["form"]):
            if form.startswith(("10-K", "10-Q")):
                quarters.add(quarter_of(dt.date.fromisoformat(day)).isoformat())
    return sorted(quarters)
