"""The lake from a shell.

    python -m finsec_assets.storage sql ["select ..."]   DuckDB shell (or one query) on the lake; `make sql`
    python -m finsec_assets.storage tables               tables and row counts
    python -m finsec_assets.storage snapshots            commits, newest last (for AT (VERSION => n))
    python -m finsec_assets.storage import-old [ASSET ...]  one-time import of tables/<asset>/<partition>.parquet
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from ..settings import Settings
from .lake import open_lake, quote_ident
from .migrate import import_old_tables
from .object_store import ObjectStore


def duckdb_cli() -> str:
    """The DuckDB shell from the duckdb-cli package (the binary beside this Python first)."""
    here = Path(sys.executable).parent / "duckdb"
    found = str(here) if here.exists() else shutil.which("duckdb")
    if not found:
        raise SystemExit("no duckdb shell found: pip install duckdb-cli (it is in the project's dependencies)")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m finsec_assets.storage", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    sql = sub.add_parser("sql", help="DuckDB shell on the lake, or run one query")
    sql.add_argument("query", nargs="?")
    sub.add_parser("tables", help="tables and row counts")
    sub.add_parser("snapshots", help="the lake's snapshots")
    old = sub.add_parser("import-old", help="import tables/<asset>/<partition>.parquet from the object store")
    old.add_argument("assets", nargs="*", help="only these assets (default: all)")
    args = ap.parse_args(argv)

    settings = Settings.from_env()
    lake = open_lake(settings)
    if args.command == "sql":
        statements = lake.shell_statements()
        lake.close()
        init = ";\n".join(statements) + ";\n"
        cmd = [duckdb_cli(), "-cmd", init]
        if args.query:
            cmd += ["-c", args.query]
        else:
            print(f"lake: {lake.safe_catalog_url}, data in {settings.lake_data_path}. Try: show tables; "
                  "select * from lake.snapshots(); select count(*) from raw_filings AT (VERSION => 3);", file=sys.stderr)
        os.execv(cmd[0], cmd)
    if args.command == "tables":
        for name in lake.tables():
            n = lake.sql(f"select count(*) n from {quote_ident(name)}")["n"][0]
            print(f"{name:32s} {n:>10d} rows")
    elif args.command == "snapshots":
        print(lake.snapshots().to_string(index=False))
    elif args.command == "import-old":
        done = import_old_tables(lake, ObjectStore(settings.object_store_url), args.assets or None)
        print(f"imported {len(done)} files, {sum(d['rows'] for d in done)} rows into the lake"
              + ("" if done else f" (no tables/<asset>/<partition>.parquet under {settings.object_store_url})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
