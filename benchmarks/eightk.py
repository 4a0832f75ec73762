"""8-K item extraction: item-id agreement with the items EDGAR lists, and time per filing against the 10-K path.

    .venv/bin/python benchmarks/eightk.py [--edgar-dir ../shared/edgar] [--repeat 5]

Corpus: every 8-K file in ``<edgar-dir>/MANIFEST.tsv`` (primary documents and
full-submission ``.txt`` files; a filing present both ways is measured both ways).
Truth, per filing, in this order: the ``items`` field of the company's
submissions JSON when the corpus has it and lists the accession; else the
``ITEM INFORMATION`` lines of the filing's SGML header (the ``.txt`` of the same
accession), mapped to item numbers through EDGAR's official item titles; else
the items the MANIFEST note records (said so in the ``truth`` column).

Precision = items found that are listed / items found; recall = items listed
that are found; micro-averaged over filings. Press-release sections (EX-99.x)
are counted apart: they are documents, not items.

Control: the peers' method, every "Item N.NN" mention anywhere in the cleaned text
(``html_to_text``), scored against the same truth, shows what the heading rules add.

Time: ``extract_sections`` per filing (decode, clean, split), best of
``--repeat`` runs, for the 8-Ks and for the corpus' 10-K primary documents.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from finsec_assets.edgar.parsing import parse_items, submission_header  # noqa: E402
from finsec_assets.text.html import html_to_text  # noqa: E402
from finsec_assets.text.sections import extract_sections_with_report  # noqa: E402

MENTION_RE = re.compile(r"\bitems?\s+(\d\.\d\d)\b", re.I)


def _read(path: Path) -> bytes:
    """Uncompressed bytes (the corpus stores some documents gzipped), so sizes and times compare like with like."""
    data = path.read_bytes() if path.exists() else path.with_name(path.name + ".gz").read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _accession(path: str) -> str:
    folder = path.split("/")[4]
    return f"{folder[:10]}-{folder[10:12]}-{folder[12:]}"


def _submission_items(edgar_dir: Path, cik: int, accession: str) -> list[str] | None:
    for sub in sorted((edgar_dir / "submissions").glob(f"CIK{cik:010d}*.json")):
        data = json.loads(sub.read_text())
        arrays = data["filings"]["recent"] if "filings" in data else data
        if accession in arrays.get("accessionNumber", []) and "items" in arrays:
            return parse_items(arrays["items"][arrays["accessionNumber"].index(accession)])
    return None


def truth_for(edgar_dir: Path, rows: list[dict], row: dict) -> tuple[list[str], str]:
    accession, cik = _accession(row["path"]), int(row["cik"])
    items = _submission_items(edgar_dir, cik, accession)
    if items is not None:
        return items, "submissions JSON"
    for other in rows:
        if other["path"].endswith(".txt") and _accession(other["path"]) == accession:
            header = submission_header(_read(edgar_dir / other["path"]))
            if header.items:
                return list(header.items), "SGML header"
    match = re.search(r"\bitems? (\d\.\d\d(?:(?:,| and) \d\.\d\d)*)", row["notes"])
    return (re.findall(r"\d\.\d\d", match.group(1)) if match else []), "MANIFEST note"


def _timed(data: bytes, form: str, repeat: int):
    best, report = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        report = extract_sections_with_report(data, form)
        best = min(best, time.perf_counter() - t)
    return best, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edgar-dir", default=str(REPO.parent / "shared" / "edgar"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ten-k-limit", type=int, default=12, help="10-Ks to time (the corpus has ~20)")
    args = parser.parse_args()
    edgar_dir = Path(args.edgar_dir)
    manifest = edgar_dir / "MANIFEST.tsv"
    if not manifest.exists():
        print(f"no {manifest}: this benchmark needs the shared corpus", file=sys.stderr)
        return 2
    rows = list(csv.DictReader(open(manifest, newline=""), delimiter="\t"))
    eight_ks = [r for r in rows if r["form"].startswith("8-K")]
    ten_ks = [r for r in rows if r["form"] == "10-K"][: args.ten_k_limit]

    print(f"## 8-K item agreement ({len(eight_ks)} files, {len({_accession(r['path']) for r in eight_ks})} filings)\n")
    print("| file | company | filed | truth from | EDGAR items | items found | press releases | flags | ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    tp = found_total = listed_total = 0
    exact = 0
    naive_tp = naive_found = naive_exact = 0
    times_8k, sizes_8k = [], []
    for row in eight_ks:
        data = _read(edgar_dir / row["path"])
        truth, source = truth_for(edgar_dir, rows, row)
        seconds, report = _timed(data, "8-K", args.repeat)
        items = [s.item for s in report.sections if not s.item.startswith("EX-")]
        exhibits = [s.item for s in report.sections if s.item.startswith("EX-")]
        hits = len(set(items) & set(truth))
        tp += hits
        found_total += len(set(items))
        listed_total += len(set(truth))
        exact += set(items) == set(truth)
        mentions = set(MENTION_RE.findall(html_to_text(data)))
        naive_tp += len(mentions & set(truth))
        naive_found += len(mentions)
        naive_exact += mentions == set(truth)
        times_8k.append(seconds)
        sizes_8k.append(len(data))
        filed = row["period/filing date"].split("filed ")[-1]
        print(f"| {row['path'].rsplit('/', 1)[1]} | {row['company'][:28]} | {filed} | {source} | {','.join(truth)} | "
              f"{','.join(items)} | {','.join(exhibits) or '-'} | {','.join(report.flags) or '-'} | {seconds * 1000:.1f} |")
    precision = tp / found_total if found_total else 1.0
    recall = tp / listed_total if listed_total else 1.0
    print(f"\nitem ids: precision {precision:.3f} ({tp}/{found_total}), recall {recall:.3f} ({tp}/{listed_total}), "
          f"files whose item set equals EDGAR's: {exact}/{len(eight_ks)}")
    print(f"control, every 'Item N.NN' mention: precision {naive_tp / max(1, naive_found):.3f} ({naive_tp}/{naive_found}), "
          f"recall {naive_tp / max(1, listed_total):.3f}, exact {naive_exact}/{len(eight_ks)}\n")

    times_10k, sizes_10k = [], []
    for row in ten_ks:
        path = edgar_dir / row["path"]
        try:
            data = _read(path)
        except FileNotFoundError:
            continue
        seconds, _ = _timed(data, "10-K", max(1, args.repeat // 2))
        times_10k.append(seconds)
        sizes_10k.append(len(data))
    print("## Time per filing (extract_sections: decode, clean, split; best of repeats, one core)\n")
    print("| path | filings | median KB | median ms/filing | mean ms/filing | MB/s |")
    print("|---|---|---|---|---|---|")
    for label, times, sizes in (("8-K", times_8k, sizes_8k), ("10-K", times_10k, sizes_10k)):
        if times:
            print(f"| {label} | {len(times)} | {statistics.median(sizes) / 1e3:.0f} | {statistics.median(times) * 1000:.1f} | "
                  f"{statistics.mean(times) * 1000:.1f} | {sum(sizes) / sum(times) / 1e6:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
