"""The table layer: time to replace one quarter when 1, 10 and 100 quarters already exist, locally and on a moto
S3 server, as rows/s and MB/s, plus the latency of a filtered read (one quarter, one item).

    .venv/bin/python benchmarks/storage.py [--rows 2000] [--existing 1,10,100] [--stores local,s3]
    # today's lake against the layer it replaced (one Parquet file per partition + warehouse.duckdb views):
    .venv/bin/python benchmarks/storage.py --old-tree /path/to/checkout-before-the-lake

MB is the in-memory Arrow size of the rows written. The replaced quarter is an existing one (a rerun), the
median of --repeats runs; the filtered read is the median of 5. The old layer runs in a subprocess that imports
``finsec_assets`` from --old-tree, the way its IO manager wrote: ``write_table`` then ``refresh_catalog_entry``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve()
QUARTERS = [f"{1993 + i // 4}-{['01', '04', '07', '10'][i % 4]}-01" for i in range(200)]
QUERY = "select count(*) n, avg(n_words) w from {t} where partition_key = '{q}' and item = '7'"


def sections(quarter: str, rows: int, text_bytes: int) -> pd.DataFrame:
    """Rows shaped like filing_sections: keys, an item code, a text of about text_bytes characters."""
    rng = np.random.default_rng(abs(hash(quarter)) % 2**32)
    words = np.array("revenue increased due to higher net sales of products services and cost margin risk".split())
    n_words = max(1, text_bytes // 7)
    texts = [" ".join(rng.choice(words, n_words)) for _ in range(rows)]
    return pd.DataFrame({"accession": [f"{quarter}-{i:07d}" for i in range(rows)], "cik": rng.integers(1, 10**6, rows),
                         "item": rng.choice(["1", "1A", "7", "7A"], rows), "text": texts, "n_words": n_words,
                         "partition_key": quarter})


def mb(df: pd.DataFrame) -> float:
    import pyarrow as pa

    return pa.Table.from_pandas(df, preserve_index=False).nbytes / 1e6


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# -- the lake -------------------------------------------------------------------------------------------
def bench_lake(home: Path, store_url: str | None, existing: int, rows: int, text_bytes: int, repeats: int) -> dict:
    from finsec_assets.settings import Settings
    from finsec_assets.storage.lake import Lake, location_from_settings

    env = {"FINSEC_HOME": str(home), **({"FINSEC_OBJECT_STORE_URL": store_url} if store_url else {})}
    lake = Lake(location_from_settings(Settings.from_env(env)))
    for q in QUARTERS[:existing]:
        lake.replace_partition("sections", q, sections(q, rows, text_bytes).drop(columns="partition_key"))
    target = QUARTERS[existing // 2]
    df = sections(target, rows, text_bytes).drop(columns="partition_key")
    write_s = median_time(lambda: lake.replace_partition("sections", target, df), repeats)
    query_s = median_time(lambda: lake.sql(QUERY.format(t="sections", q=target)), 5)
    n = lake.sql(QUERY.format(t="sections", q=target))["n"][0]
    lake.close()
    return {"write_s": write_s, "query_s": query_s, "rows": rows, "mb": mb(df), "query_rows": int(n)}


# -- the layer it replaced (runs with finsec_assets from --old-tree) ---------------------------------------------
def bench_old(home: Path, store_url: str | None, existing: int, rows: int, text_bytes: int, repeats: int) -> dict:
    from finsec_assets.storage.catalog import query, refresh_catalog_entry
    from finsec_assets.storage.object_store import ObjectStore
    from finsec_assets.storage.tables import write_table

    store = ObjectStore(store_url or str(home / "objects"))
    warehouse = home / "warehouse.duckdb"
    for q in QUARTERS[:existing]:  # files only; the catalog is refreshed once (each refresh re-reads all on S3)
        write_table(store, "sections", q, sections(q, rows, text_bytes))
    refresh_catalog_entry(warehouse, store, "sections")
    target = QUARTERS[existing // 2]
    df = sections(target, rows, text_bytes)

    def write():
        _, table, _ = write_table(store, "sections", target, df)
        refresh_catalog_entry(warehouse, store, "sections", table.schema)

    write_s = median_time(write, repeats)
    query_s = median_time(lambda: query(warehouse, QUERY.format(t="sections", q=target)), 5)
    n = query(warehouse, QUERY.format(t="sections", q=target))["n"][0]
    return {"write_s": write_s, "query_s": query_s, "rows": rows, "mb": mb(df), "query_rows": int(n)}


# -- moto -------------------------------------------------------------------------------------------------
class Moto:
    def __enter__(self):
        exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
                    "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        os.environ.update(self.env)
        import boto3

        boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="bench")
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(10)


def run_cases(layer: str, stores: list[str], existing: list[int], args) -> list[dict]:
    results = []
    bench = bench_lake if layer == "lake" else bench_old
    moto = Moto().__enter__() if "s3" in stores else None
    try:
        for store in stores:
            for k in existing:
                home = Path(tempfile.mkdtemp(prefix=f"bench-{layer}-"))
                url = f"s3://bench/{home.name}" if store == "s3" else None
                try:
                    r = bench(home, url, k, args.rows, args.text_bytes, args.repeats)
                finally:
                    shutil.rmtree(home, ignore_errors=True)
                results.append({"layer": layer, "store": store, "existing": k, **r})
                print(f"  {layer} {store} {k}: {r['write_s']:.3f}s", file=sys.stderr, flush=True)
    finally:
        if moto:
            moto.__exit__()
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000, help="rows per quarter")
    ap.add_argument("--text-bytes", type=int, default=1000, help="characters of text per row")
    ap.add_argument("--existing", default="1,10,100", help="quarters already stored")
    ap.add_argument("--stores", default="local,s3")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--old-tree", help="a checkout whose finsec_assets has the old layer (tables.py + catalog.py)")
    ap.add_argument("--layer", default="lake", choices=["lake", "old"], help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    stores, existing = args.stores.split(","), [int(k) for k in args.existing.split(",")]
    results = run_cases(args.layer, stores, existing, args)
    if args.json:
        print(json.dumps(results))
        return
    if args.old_tree:
        cmd = [sys.executable, str(HERE), "--layer", "old", "--json", "--rows", str(args.rows), "--text-bytes",
               str(args.text_bytes), "--existing", args.existing, "--stores", args.stores, "--repeats", str(args.repeats)]
        env = {**os.environ, "PYTHONPATH": str(Path(args.old_tree).resolve())}
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=tempfile.gettempdir())
        results += json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\n{args.rows} rows x ~{args.text_bytes} chars per quarter; replace one existing quarter "
          f"(median of {args.repeats}); filtered read = one quarter, item 7 (median of 5)\n")
    print("| layer | store | quarters stored | replace one (s) | rows/s | MB/s | filtered read (ms) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in sorted(results, key=lambda r: (r["store"], r["existing"], r["layer"])):
        name = "lake (DuckLake)" if r["layer"] == "lake" else "old (Parquet per partition + views)"
        print(f"| {name} | {r['store']} | {r['existing']} | {r['write_s']:.3f} | {r['rows'] / r['write_s']:,.0f} | "
              f"{r['mb'] / r['write_s']:.1f} | {r['query_s'] * 1000:.1f} |")


if __name__ == "__main__":
    main()
