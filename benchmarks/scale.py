"""The whole graph over a synthetic EDGAR universe of N filings: per-stage throughput and peak memory, the lake's
size, a filtered query, a 40-quarter backfill's launch and run queue, the UI's asset page, and (--celery) a backfill
spread over two Celery workers.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \\
    .venv/bin/python benchmarks/scale.py --filings 100,1000 --json benchmarks/results/scale.json
    .venv/bin/python benchmarks/scale.py --report benchmarks/results/scale.json   # table + extrapolation to 20,000

How it measures (each number says where it comes from):
- N filings = companies x --quarters (default 10 quarters ending 2024Q4; companies = ceil(N / quarters)), from
  ``SyntheticUniverse(seed=--seed)`` served by the project's ``ReplayServer`` on 127.0.0.1 (a thread of this
  process). The EDGAR rate limit is lifted for that loopback replay when the settings allow it (--max-rps); the
  output says whether it was.
- Every stage is its own freshly exec'd ``python benchmarks/scale.py _stage`` process (never a fork of this one),
  which materializes the asset for each quarter with ``execute_in_process`` on a persistent DAGSTER_HOME, reading
  its inputs from the lake as the IO manager does. ``seconds`` is the time inside those calls (not the ~6 s of
  Python and Dagster imports, reported as ``import_seconds``); ``filings_per_s`` = filings / seconds.
- ``peak_rss_mb``: the largest of (a) the stage process's own VmHWM, reset before each quarter through
  /proc/self/clear_refs, so it is the peak of one quarter's step; (b) the stage process's RUSAGE_CHILDREN
  ru_maxrss (its exec'd Pipes trainer; a forked pool worker's starts at the stage's own RSS); (c) the peak of the
  summed PSS of the stage process and all its descendants (pool workers, trainer), sampled every 0.2 s. All are kept
  in the JSON. wait4()'s ru_maxrss of the stage process is kept too (``wait4_maxrss_mb``) but not used: Linux
  carries the forking parent's peak into it even across exec, so it shows this script's own RSS.
- Corpus stages (checkpoints at the demo's default sizes, the credit chain, the understanding datasets) run once
  over all quarters.
- The 40-quarter backfill is launched the way the UI does (GraphQL ``launchPartitionBackfill`` on a
  ``dagster-webserver`` this script starts) on a DAGSTER_HOME with a QueuedRunCoordinator and a running
  ``dagster-daemon``; it records how long until all runs exist and how many were queued vs started over time,
  then cancels the backfill.
- The UI: headless Chromium (Debian's /usr/bin/chromium + chromedriver, as the UI test) opens filing_index's asset
  page and its partitions tab; the time until the page shows the asset (and the partition count) is recorded.

Timings on a shared machine vary; the JSON keeps the load averages (os.getloadavg) at the start and end of every
stage.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
BIN = Path(sys.executable).parent
LOCATION = "finsec_assets.definitions"

# The per-filing graph, in dependency order (quarter partitions), and the corpus assets over all quarters.
UNIVERSE_STAGE = "company_universe"
PER_FILING = ["filing_index", "raw_filings", "filing_sections", "nlp_scores", "filing_summaries",
              "pooled_embeddings", "filing_events", "xbrl_facts"]
CHECKPOINTS = ["pretrained_checkpoint", "finetuned_checkpoint"]
CREDIT = ["altman_inputs", "synthetic_altman_financials", "tabtext_dataset", "rating_models", "rating_model_metrics",
          "rating_predictions", "next_year_distress_experiment"]
UNDERSTANDING_DATASETS = ["summarization_dataset", "classification_dataset", "ner_dataset", "qa_dataset",
                          "relation_dataset"]
CORPUS = CREDIT + UNDERSTANDING_DATASETS + CHECKPOINTS  # the long fixed-step trainers after the rest
ALL_STAGES = [UNIVERSE_STAGE, *PER_FILING, *CORPUS]
ENCODER_STAGES = {"filing_summaries", "pooled_embeddings"}
CHEAP_STAGES = [UNIVERSE_STAGE, "filing_index", "raw_filings", "filing_sections", "nlp_scores", "xbrl_facts"]
LAST_QUARTER = "2024Q4"
MB = 1024 * 1024


# ----------------------------------------------------------------------------------------------- helpers

def quarter_labels(n: int, last: str = LAST_QUARTER) -> list[str]:
    """n consecutive quarters ending at ``last`` ("2024Q4"), oldest first."""
    year, q = int(last[:4]), int(last[-1])
    index = year * 4 + q - 1
    return [f"{i // 4}Q{i % 4 + 1}" for i in range(index - n + 1, index + 1)]


def partition_key(label: str) -> str:
    """"2024Q1" -> "2024-01-01", the quarter partition key."""
    return f"{label[:4]}-{3 * (int(label[-1]) - 1) + 1:02d}-01"


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen | None, grace: float = 20) -> None:
    """Stop a process group this script started (SIGTERM, then SIGKILL)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def write_dagster_yaml(home: Path, max_concurrent_runs: int | None = None) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    text = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
    if max_concurrent_runs is not None:
        text += ("run_coordinator:\n  module: dagster._core.run_coordinator\n  class: QueuedRunCoordinator\n"
                 f"  config:\n    max_concurrent_runs: {max_concurrent_runs}\n")
    (home / "dagster.yaml").write_text(text)
    return home


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSEC_", "DAGSTER_"))}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "PYTHONPATH": str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "PYTHONUNBUFFERED": "1"})
    return env


# ----------------------------------------------------------------------------------------------- the universe

class Universe:
    """The synthetic universe of one size and the replay server serving it (or, with --universe sample, the
    bundled sample's 14 companies as they are)."""

    def __init__(self, filings: int, quarters: int, seed: int, kind: str, work: Path):
        from finsec_assets.edgar.replay import ReplayServer

        self.kind = kind
        self.work = work
        if kind == "synthetic":
            from finsec_assets.edgar.synthetic import SyntheticUniverse

            self.labels = quarter_labels(quarters)
            companies = max(1, math.ceil(filings / quarters))
            self.universe = SyntheticUniverse(companies=companies, quarters=self.labels, seed=seed)
            self.server = ReplayServer(universe=self.universe).start()
            self.companies = companies
            self.filings = int(self.universe.filings)
            self.ciks = list(self.universe.ciks)
        elif kind == "sample":
            from finsec_assets.edgar.sample import sample_quarters
            from finsec_assets.settings import SAMPLE_UNIVERSE

            self.universe = None
            self.server = ReplayServer().start()
            keys = sample_quarters()
            self.labels = [f"{k[:4]}Q{(int(k[5:7]) - 1) // 3 + 1}" for k in keys]
            self.companies = len(SAMPLE_UNIVERSE)
            self.filings = _sample_filings()
            self.ciks = []
        else:
            raise SystemExit(f"--universe {kind!r}: use synthetic or sample")
        self.partitions = [partition_key(q) for q in self.labels]

    def env(self, max_rps: str) -> dict[str, str]:
        if self.universe is not None:
            env = dict(self.universe.env(self.server.url, self.work / "universe.txt"))
        else:
            universe_file = self.work / "universe.txt"
            from finsec_assets.settings import SAMPLE_UNIVERSE

            universe_file.write_text("\n".join(SAMPLE_UNIVERSE) + "\n")
            env = {"FINSEC_EDGAR_SOURCE": "live", "FINSEC_EDGAR_WWW_URL": self.server.url,
                   "FINSEC_EDGAR_DATA_URL": self.server.url, "FINSEC_UNIVERSE": str(universe_file),
                   "FINSEC_EDGAR_USER_AGENT": "finsec scale benchmark bench@example.com"}
        env["FINSEC_BACKFILL_START"] = self.partitions[0]
        env["FINSEC_BACKFILL_END"] = self.partitions[-1]
        env["FINSEC_FORMS"] = "10-K,10-Q"
        env["FINSEC_EDGAR_MAX_RPS"] = max_rps
        return env

    def requests(self) -> int:
        return len(self.server.requests)

    def stop(self) -> None:
        self.server.stop()
        if self.universe is not None:
            self.universe.close()


def _sample_filings() -> int:
    from finsec_assets.edgar.client import SAMPLE_DIR

    count = 0
    for path in (SAMPLE_DIR / "submissions").glob("CIK*.json"):
        data = json.loads(path.read_text())
        arrays = data["filings"]["recent"] if "filings" in data else data
        count += sum(1 for f in arrays["form"] if f in ("10-K", "10-Q"))
    return count


def rate_limit(env: dict[str, str], wanted: str) -> tuple[str, bool, str]:
    """The FINSEC_EDGAR_MAX_RPS to run with: ``wanted`` if the settings accept it for this replay, else 10."""
    from finsec_assets.settings import Settings, SettingsError

    try:
        settings = Settings.from_env({**env, "FINSEC_EDGAR_MAX_RPS": wanted})
    except SettingsError as exc:
        return "10", False, f"FINSEC_EDGAR_MAX_RPS={wanted} refused ({exc}); ran at SEC's 10 requests/s"
    lifted = settings.edgar_max_rps > 10 or settings.edgar_max_rps in (0, float("inf"))
    return wanted, lifted, (f"rate limit lifted for the loopback replay: FINSEC_EDGAR_MAX_RPS={wanted}" if lifted
                            else f"rate limit kept: FINSEC_EDGAR_MAX_RPS={wanted}")


# ----------------------------------------------------------------------------------------------- one stage

def run_stage(asset: str, partitions: list[str] | None, env: dict[str, str], work: Path,
              run_config: dict | None = None, nice: int = 0, timeout: float = 4 * 3600) -> dict:
    """Materialize ``asset`` (each of ``partitions``, or once) in a fresh exec'd process and measure it."""
    spec = {"asset": asset, "partitions": partitions, "run_config": run_config or {}}
    out = work / f"stage-{asset}-{uuid.uuid4().hex[:6]}.json"
    log = work / f"stage-{asset}.log"
    cmd = [sys.executable, str(HERE), "_stage", json.dumps(spec), str(out)]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    load_before = loadavg()
    t0 = time.perf_counter()
    with open(log, "w") as handle:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    result = json.loads(out.read_text()) if out.exists() else {}
    result.update({"process_seconds": round(wall, 2), "wait4_maxrss_mb": round(usage.ru_maxrss / 1024, 1),
                   "load_before": load_before, "load_after": loadavg(), "exit_code": proc.returncode})
    if proc.returncode != 0 or not result.get("success"):
        result["success"] = False
        result.setdefault("error", f"exit {proc.returncode}: " + log.read_text(errors="replace")[-2500:])
    result["peak_rss_mb"] = peak_of(result)
    return result


def peak_of(stage: dict) -> float:
    """The step's peak: its own VmHWM (reset per quarter), its reaped children's ru_maxrss (the exec'd trainer) and
    the sampled PSS of its whole tree. Not wait4's ru_maxrss of the stage process: Linux carries the forking
    parent's peak into it across exec (exec_mmap keeps the old mm's hiwater in signal->maxrss), so it reads the
    benchmark parent's RSS, not the stage's."""
    return round(max(stage.get("process_hwm_mb", 0), stage.get("children_maxrss_mb", 0),
                     stage.get("tree_pss_peak_mb", 0)), 1)


def _proc_status_kb(pid: int | str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(x) for x in f.read().split()]
                out.extend(kids)
                todo.extend(kids)
        except OSError:
            continue
    return out


class TreeSampler(threading.Thread):
    """Peak of the summed PSS of this process and its descendants, sampled every ``every`` seconds."""

    def __init__(self, every: float = 0.2):
        super().__init__(daemon=True)
        self.every = every
        self.peak_kb = 0
        self.children_seen = 0
        self._halt = threading.Event()

    def run(self):
        me = os.getpid()
        while not self._halt.is_set():
            kids = _descendants(me)
            self.children_seen = max(self.children_seen, len(kids))
            self.peak_kb = max(self.peak_kb, _pss_kb(me) + sum(_pss_kb(k) for k in kids))
            self._halt.wait(self.every)

    def stop(self):
        self._halt.set()
        self.join(5)


def stage_main(spec_json: str, out_path: str) -> int:
    """The child: import, then materialize the asset per partition, resetting VmHWM before each."""
    spec = json.loads(spec_json)
    t0 = time.perf_counter()
    import dagster as dg

    from finsec_assets.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def()
    instance = dg.DagsterInstance.get()
    import_seconds = time.perf_counter() - t0
    key = dg.AssetKey(spec["asset"])
    run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}, **spec["run_config"]}
    sampler = TreeSampler()
    sampler.start()
    per_partition, total, rows, failed_checks, error = [], 0.0, 0, [], None
    hwm_max = 0
    for partition in spec["partitions"] or [None]:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM: the peak below is this quarter's step, not the process's history
        except OSError:
            pass
        t = time.perf_counter()
        result = job.execute_in_process(asset_selection=[key], partition_key=partition, instance=instance,
                                        raise_on_error=False, run_config=run_config)
        seconds = time.perf_counter() - t
        hwm = _proc_status_kb("self", "VmHWM") / 1024
        hwm_max = max(hwm_max, hwm)
        total += seconds
        n = 0
        for event in result.all_events:
            if event.event_type_value == "ASSET_MATERIALIZATION":
                meta = event.event_specific_data.materialization.metadata
                if "dagster/row_count" in meta:
                    n += int(meta["dagster/row_count"].value)
            elif event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.asset_check_evaluation_data.passed:
                failed_checks.append(f"{partition or ''}:{event.asset_check_evaluation_data.check_name}")
        rows += n
        per_partition.append({"partition": partition, "seconds": round(seconds, 3), "hwm_mb": round(hwm, 1), "rows": n})
        if not result.success:
            failures = [e.message for e in result.all_events if e.event_type_value in ("STEP_FAILURE", "RUN_FAILURE")]
            error = f"{spec['asset']} {partition or ''} failed: " + " | ".join(failures)[-2500:]
            break
    sampler.stop()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # reaped trainers / pool workers
    out = {"asset": spec["asset"], "success": error is None, "seconds": round(total, 3),
           "children_maxrss_mb": round(children, 1),
           "import_seconds": round(import_seconds, 2), "process_hwm_mb": round(hwm_max, 1),
           "tree_pss_peak_mb": round(sampler.peak_kb / 1024, 1), "descendants_seen": sampler.children_seen,
           "rows": rows, "partitions": per_partition, "failed_checks": failed_checks[:20]}
    if error:
        out["error"] = error
    Path(out_path).write_text(json.dumps(out))
    return 0 if error is None else 1


# ----------------------------------------------------------------------------------------------- lake

def lake_stats(env: dict[str, str], ciks: list[int], partitions: list[str]) -> dict:
    """The lake's size on disk and the latency of filtered queries (cold = first, in a fresh connection)."""
    from finsec_assets.settings import Settings
    from finsec_assets.storage.lake import open_lake

    settings = Settings.from_env(env)
    data = Path(settings.lake_data_path)
    catalog = Path(settings.catalog_url.removeprefix("sqlite:///")) if settings.catalog_url.startswith("sqlite") else None
    stats = {"lake_data_mb": round(dir_bytes(data) / MB, 2) if data.exists() else 0.0,
             "catalog_mb": round(sum(p.stat().st_size for p in catalog.parent.glob(catalog.name + "*")) / MB, 2)
             if catalog and catalog.exists() else None,
             "object_store_mb": round(dir_bytes(Path(settings.object_store_url)) / MB, 2)}
    t = time.perf_counter()
    lake = open_lake(settings)
    tables = lake.tables()
    stats["open_ms"] = round((time.perf_counter() - t) * 1000, 1)
    stats["tables"] = {}
    for name in tables:
        stats["tables"][name] = int(lake.sql(f'select count(*) n from "{name}"')["n"][0])
    queries = []
    if "filing_sections" in tables and partitions:
        cik = ciks[len(ciks) // 2] if ciks else None
        quarter = partitions[len(partitions) // 2]
        queries.append(("one company's sections in one quarter" if cik else "one quarter's MD&A sections",
                        "select accession, item, length(text) n from filing_sections where partition_key = ? and "
                        + ("cik = ?" if cik else "item = '7'"), [quarter] + ([cik] if cik else [])))
    if "nlp_scores" in tables and ciks:
        queries.append(("one company's scores across all quarters",
                        "select * from nlp_scores where cik = ?", [ciks[0]]))
    stats["queries"] = []
    for label, sql, params in queries:
        times, n = [], 0
        for _ in range(6):
            t = time.perf_counter()
            n = len(lake.sql(sql, params))
            times.append((time.perf_counter() - t) * 1000)
        stats["queries"].append({"query": label, "sql": sql, "params": [str(p) for p in params], "rows": n,
                                 "first_ms": round(times[0], 1), "median_ms": round(statistics.median(times[1:]), 1)})
    lake.close()
    return stats


def busiest_cik(env: dict[str, str], ciks: list[int]) -> int:
    """The universe's company with the most section text in the lake among those the causal LM can fine-tune on:
    MD&A to validate on and other sections to train on (clm_finetune refuses a company without either)."""
    from finsec_assets.ml.training import MDNA_ITEMS
    from finsec_assets.settings import Settings
    from finsec_assets.storage.lake import open_lake

    lake = open_lake(Settings.from_env(env))
    try:
        if not lake.has_table("filing_sections"):
            return int(ciks[0])
        mdna = f"item in ({', '.join(repr(i) for i in MDNA_ITEMS)})"
        df = lake.sql(f"select cik, sum(length(text)) n from filing_sections where length(trim(text)) > 0 "
                      f"group by 1 having count(*) filter ({mdna}) > 0 and count(*) filter (not {mdna}) > 0 "
                      f"order by 2 desc, 1 limit 1")
        return int(df["cik"][0]) if len(df) else int(ciks[0])
    finally:
        lake.close()


def row_counts(env: dict[str, str], tables: list[str]) -> dict[str, dict[str, int]]:
    from finsec_assets.settings import Settings
    from finsec_assets.storage.lake import open_lake

    lake = open_lake(Settings.from_env(env))
    out = {}
    for t in tables:
        if lake.has_table(t):
            df = lake.sql(f'select partition_key, count(*) n from "{t}" group by 1 order by 1')
            out[t] = {str(k): int(n) for k, n in zip(df["partition_key"], df["n"])}
    lake.close()
    return out


# ----------------------------------------------------------------------------------------------- webserver, daemon

class Dagster:
    """dagster-webserver (and optionally dagster-daemon) over a DAGSTER_HOME, as `dagster dev` would run them."""

    def __init__(self, env: dict[str, str], work: Path, daemon: bool):
        self.env, self.work = env, work
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web = subprocess.Popen([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.port),
                                     "-m", LOCATION], cwd=REPO, env=env, start_new_session=True,
                                    stdout=open(work / "webserver.log", "w"), stderr=subprocess.STDOUT)
        self.daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-m", LOCATION], cwd=REPO, env=env,
                                       start_new_session=True, stdout=open(work / "daemon.log", "w"),
                                       stderr=subprocess.STDOUT) if daemon else None
        t = time.perf_counter()
        deadline = time.time() + 240
        while True:
            if self.web.poll() is not None:
                raise RuntimeError("dagster-webserver exited: " + (work / "webserver.log").read_text()[-3000:])
            if time.time() > deadline:
                raise RuntimeError("dagster-webserver not up in 240 s: " + (work / "webserver.log").read_text()[-3000:])
            try:
                urllib.request.urlopen(f"{self.url}/server_info", timeout=5).close()
                break
            except OSError:
                time.sleep(0.5)
        self.startup_seconds = round(time.perf_counter() - t, 1)

    def graphql(self, query: str, variables: dict) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        req = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                doc = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"GraphQL HTTP {exc.code}: {exc.read()[:2000]!r}") from exc
        if doc.get("errors"):
            raise RuntimeError(f"GraphQL errors: {doc['errors']}")
        return doc["data"]

    def launch_backfill(self, assets: list[str], partitions: list[str], tags: dict | None = None) -> str:
        """What the UI's "Launch backfill" sends for an asset selection and a partition range."""
        data = self.graphql(
            """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
                 __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack }
                 ... on InvalidStepError { invalidStepKey } ... on InvalidOutputError { invalidOutputName } } }""",
            {"p": {"assetSelection": [{"path": [a]} for a in assets], "partitionNames": partitions,
                   "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}})
        result = data["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"launchPartitionBackfill: {result}")
        return result["backfillId"]

    def cancel_backfill(self, backfill_id: str) -> None:
        self.graphql("mutation($id: String!) { cancelPartitionBackfill(backfillId: $id) { __typename } }",
                     {"id": backfill_id})

    def terminate(self, run_ids: list[str]) -> None:
        if run_ids:
            self.graphql("mutation($ids: [String!]!) { terminateRuns(runIds: $ids) { __typename } }", {"ids": run_ids})

    def close(self) -> None:
        stop(self.daemon, 30)
        stop(self.web, 30)


IN_PROGRESS = ("STARTING", "STARTED", "CANCELING")


def backfill_runs(instance, backfill_id: str) -> list:
    import dagster as dg

    return instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))


def measure_backfill(base_env: dict[str, str], work: Path, quarters: int, max_concurrent: int, watch_s: float) -> dict:
    """Launch a ``quarters``-quarter backfill of the per-filing graph through the UI's GraphQL call on an instance
    with a QueuedRunCoordinator(max_concurrent_runs) and a daemon; watch the queue, then cancel."""
    import dagster as dg

    work.mkdir(parents=True, exist_ok=True)
    home = write_dagster_yaml(work / "dagster_home", max_concurrent)
    env = {**base_env, "DAGSTER_HOME": str(home), "FINSEC_HOME": str(work / "finsec")}
    seed = run_stage(UNIVERSE_STAGE, None, env, work)  # the runs' filing_index reads it
    keys = [partition_key(q) for q in quarter_labels(quarters)]
    out = {"quarters": quarters, "first": keys[0], "last": keys[-1], "assets": PER_FILING,
           "max_concurrent_runs": max_concurrent, "company_universe_seeded": seed["success"]}
    dagster = Dagster(env, work, daemon=True)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        out["webserver_startup_seconds"] = dagster.startup_seconds
        t0 = time.perf_counter()
        backfill_id = dagster.launch_backfill(PER_FILING, keys, {"finsec/benchmark": "scale"})
        out["graphql_launch_seconds"] = round(time.perf_counter() - t0, 2)
        timeline, first_run, all_runs, max_in_progress = [], None, None, 0
        while time.perf_counter() - t0 < watch_s and (all_runs is None or time.perf_counter() - t0 < all_runs + 15):
            runs = backfill_runs(instance, backfill_id)
            statuses: dict[str, int] = {}
            for r in runs:
                statuses[r.status.value] = statuses.get(r.status.value, 0) + 1
            elapsed = round(time.perf_counter() - t0, 1)
            in_progress = sum(statuses.get(s, 0) for s in IN_PROGRESS)
            max_in_progress = max(max_in_progress, in_progress)
            if runs and first_run is None:
                first_run = elapsed
            if len(runs) >= quarters and all_runs is None:
                all_runs = elapsed
                out["statuses_when_all_runs_existed"] = statuses
            if not timeline or timeline[-1]["statuses"] != statuses:
                timeline.append({"t": elapsed, "runs": len(runs), "statuses": statuses})
            time.sleep(0.5)
        backfill = instance.get_backfill(backfill_id)
        out.update({"backfill_id": backfill_id, "seconds_to_first_run": first_run, "seconds_to_all_runs": all_runs,
                    "runs_created": len(backfill_runs(instance, backfill_id)),
                    "max_runs_in_progress": max_in_progress,
                    "watched_seconds": round(time.perf_counter() - t0, 1),
                    "backfill_status_at_end_of_watch": backfill.status.value if backfill else None,
                    "timeline": timeline[:60]})
        dagster.cancel_backfill(backfill_id)
        dagster.terminate([r.run_id for r in backfill_runs(instance, backfill_id) if r.status.value in IN_PROGRESS])
        deadline = time.time() + 60
        while time.time() < deadline and any(r.status.value in IN_PROGRESS for r in backfill_runs(instance, backfill_id)):
            time.sleep(1)
        final: dict[str, int] = {}
        for r in backfill_runs(instance, backfill_id):
            final[r.status.value] = final.get(r.status.value, 0) + 1
        out["statuses_after_cancel"] = final
    finally:
        dagster.close()
        instance.dispose()
    return out


# ----------------------------------------------------------------------------------------------- the UI

def measure_ui(env: dict[str, str], work: Path, asset: str = "filing_index") -> dict:
    """Open the asset's page and its partitions tab in headless Chromium; time until each shows its content."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        return {"skipped": "Chromium or chromedriver is absent (apt-get install -y chromium chromium-driver)"}
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return {"skipped": "selenium is not installed"}
    import dagster as dg

    from finsec_assets.defs.common import quarter_partitions

    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    n_partitions = len(quarter_partitions.get_partition_keys())
    materialized = len(instance.get_materialized_partitions(dg.AssetKey(asset)))
    instance.dispose()
    dagster = Dagster(env, work, daemon=False)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1600,1000", f"--user-data-dir={work / 'chromium'}"]:
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    out = {"asset": asset, "partitions_defined": n_partitions, "partitions_materialized": materialized,
           "webserver_startup_seconds": dagster.startup_seconds}
    count_re = re.compile(rf"\b{n_partitions} Partitions\b")
    status_re = re.compile(r"Materialized \(\d+\)")
    try:
        wait = WebDriverWait(driver, 120, poll_frequency=0.1)
        body = lambda d: d.find_element(By.TAG_NAME, "body").text  # noqa: E731
        for label, path, ready in [
            ("warmup_overview", f"/assets/{asset}", lambda d: asset in body(d)),
            ("overview", f"/assets/{asset}", lambda d: asset in body(d) and "Partitions" in body(d)),
            ("partitions_tab", f"/assets/{asset}?view=partitions",
             lambda d: count_re.search(body(d)) and status_re.search(body(d))),
        ]:
            driver.get("about:blank")
            t = time.perf_counter()
            driver.get(dagster.url + path)
            dom = time.perf_counter() - t
            try:
                wait.until(ready)
                out[f"{label}_seconds"] = round(time.perf_counter() - t, 2)
            except Exception as exc:  # the page did not show what we wait for: say so, with its text
                out[f"{label}_error"] = f"{type(exc).__name__}: {body(driver)[:300]!r}"
            out[f"{label}_dom_seconds"] = round(dom, 2)
        driver.save_screenshot(str(work / "asset_partitions.png"))
    finally:
        driver.quit()
        dagster.close()
    return out


# ----------------------------------------------------------------------------------------------- Celery

@contextlib.contextmanager
def redis_database():
    """A Redis database 2-15 on 127.0.0.1:6379 that no one uses (claimed with a key), emptied afterwards."""
    import redis

    claim = f"finsec-scale:{uuid.uuid4().hex}"
    for db in random.sample(range(2, 16), 14):
        client = redis.Redis(host="127.0.0.1", port=6379, db=db)
        if client.dbsize() == 0 and client.set("finsec-scale:claim", claim, nx=True, ex=6 * 3600):
            break
    else:
        raise RuntimeError("every Redis database 2-15 on 127.0.0.1:6379 is in use")
    try:
        yield f"redis://127.0.0.1:6379/{db}"
    finally:
        client.flushdb()


def start_worker(env: dict[str, str], work: Path, name: str) -> tuple[subprocess.Popen, str]:
    from celery import Celery

    node = f"{name}@{socket.gethostname()}"
    cmd = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y",
           str(REPO / "docker" / "celery.yaml"), "-q", "dagster,gpu", "-n", name, "--", "--concurrency=1"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True,
                            stdout=open(work / f"{name}.log", "w"), stderr=subprocess.STDOUT)
    app = Celery(broker=env["FINSEC_CELERY_BROKER"], backend=env["FINSEC_CELERY_BACKEND"])
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {name} exited: " + (work / f"{name}.log").read_text()[-3000:])
            if app.control.ping(destination=[node], timeout=1.0, limit=1):
                return proc, node
        raise RuntimeError(f"worker {name} did not answer a ping within 120 s")
    finally:
        app.close()


def celery_backfill(base_env: dict[str, str], work: Path, partitions: list[str], assets: list[str], workers: int,
                    broker: str, timeout_s: float) -> dict:
    """One backfill of ``assets`` over ``partitions`` with FINSEC_EXECUTOR=celery and ``workers`` workers."""
    import dagster as dg

    work.mkdir(parents=True, exist_ok=True)
    home = write_dagster_yaml(work / "dagster_home", max_concurrent_runs=max(2, workers))
    env = {**base_env, "DAGSTER_HOME": str(home), "FINSEC_HOME": str(work / "finsec"), "FINSEC_EXECUTOR": "celery",
           "FINSEC_CELERY_BROKER": broker, "FINSEC_CELERY_BACKEND": broker,
           "FINSEC_CELERY_CONFIG": str(REPO / "docker" / "celery.yaml"), "FINSEC_EDGAR_RATE_LIMIT_URL": "local",
           # A Celery prefork worker's process is daemonic and may not fork a step's own pool; step_workers() does
           # not see Celery from inside the worker (it finds an in-process executor there), so say it here.
           "FINSEC_STEP_WORKERS": "1"}
    seed = run_stage(UNIVERSE_STAGE, None, {**env, "FINSEC_EXECUTOR": "in_process"}, work)
    if not seed["success"]:
        return {"error": "company_universe: " + seed.get("error", "")}
    instance = dg.DagsterInstance.from_config(str(home))
    instance.get_runs(limit=1)  # the schema exists before several processes race to create it
    procs, nodes = [], []
    dagster = None
    try:
        for i in range(workers):
            p, node = start_worker(env, work, f"scale-w{i}-{uuid.uuid4().hex[:4]}")
            procs.append(p)
            nodes.append(node)
        dagster = Dagster(env, work, daemon=True)
        t0 = time.perf_counter()
        backfill_id = dagster.launch_backfill(assets, partitions, {"finsec/benchmark": "celery"})
        while time.perf_counter() - t0 < timeout_s:
            backfill = instance.get_backfill(backfill_id)
            runs = backfill_runs(instance, backfill_id)
            if backfill.status.value != "REQUESTED" and all(r.is_finished for r in runs):
                break
            time.sleep(1)
        seconds = time.perf_counter() - t0
        runs = backfill_runs(instance, backfill_id)
        by_worker: dict[str, dict] = {n: {"steps": 0, "quarters": set()} for n in nodes}
        for run in runs:
            for r in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
                md = r.dagster_event.engine_event_data.metadata if r.dagster_event.engine_event_data else {}
                if "Celery worker" in md:
                    w = by_worker.setdefault(md["Celery worker"].value, {"steps": 0, "quarters": set()})
                    w["steps"] += 1
                    w["quarters"].add(run.tags.get("dagster/partition"))
        statuses: dict[str, int] = {}
        for r in runs:
            statuses[r.status.value] = statuses.get(r.status.value, 0) + 1
        return {"workers": workers, "seconds": round(seconds, 1), "backfill_status": instance.get_backfill(backfill_id).status.value,
                "runs": statuses, "by_worker": {n: {"steps": v["steps"], "quarters": sorted(q for q in v["quarters"] if q)}
                                                for n, v in by_worker.items()},
                "row_counts": row_counts(env, assets), "env": env}
    finally:
        if dagster:
            dagster.close()
        for p in procs:
            stop(p, 30)
        instance.dispose()


def measure_celery(base_env: dict[str, str], work: Path, partitions: list[str], assets: list[str],
                   reference: dict[str, dict[str, int]], timeout_s: float) -> dict:
    """The same backfill on two workers and on one; quarters per worker, row counts vs the in-process run."""
    out: dict = {"assets": assets, "quarters": len(partitions)}
    with redis_database() as broker:
        for workers in (2, 1):
            run = celery_backfill(base_env, work / f"celery-{workers}", partitions, assets, workers, broker, timeout_s)
            run.pop("env", None)
            counts = run.pop("row_counts", {})
            run["lake_matches_in_process"] = counts == {a: reference[a] for a in assets if a in reference}
            if not run["lake_matches_in_process"]:
                run["row_count_differences"] = {a: {"celery": counts.get(a), "in_process": reference.get(a)}
                                                for a in assets if counts.get(a) != reference.get(a)}
            run["rows"] = {a: sum(v.values()) for a, v in counts.items()}
            out[f"{workers}_workers"] = run
    one, two = out.get("1_workers", {}).get("seconds"), out.get("2_workers", {}).get("seconds")
    if one and two:
        out["speedup_two_vs_one"] = round(one / two, 2)
    return out


# ----------------------------------------------------------------------------------------------- one size

def stage_plan(selected: list[str], filings: int, encoders_max: int | None,
               parents: dict[str, set[str]] | None = None) -> tuple[list[str], dict[str, str]]:
    """The stages to run, in dependency order, with the encoder stages and everything that needs them last: a long
    run that is stopped early has measured every cheaper stage."""
    skipped = {}
    plan = []
    order = list(ALL_STAGES)
    if parents is not None:
        late: set[str] = set(ENCODER_STAGES)
        changed = True
        while changed:
            changed = False
            for s in ALL_STAGES:
                if s not in late and parents.get(s, set()) & late:
                    late.add(s)
                    changed = True
        order = [s for s in ALL_STAGES if s not in late] + [s for s in ALL_STAGES if s in late]
    for s in order:
        if s not in selected:
            continue
        if s in ENCODER_STAGES and encoders_max is not None and filings > encoders_max:
            skipped[s] = f"encoder stage skipped above --encoders-max {encoders_max} filings"
            continue
        plan.append(s)
    return plan, skipped


def parents_of() -> dict[str, set[str]]:
    from finsec_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    return {k.path[-1]: {p.path[-1] for p in graph.get(k).parent_keys} for k in graph.toposorted_asset_keys
            if graph.get(k).is_materializable}


def run_size(filings: int, args, work: Path, parents: dict[str, set[str]], save=lambda run: None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    universe = Universe(filings, args.quarters, args.seed, args.universe, work)
    base = clean_env()
    try:
        uenv = universe.env(args.max_rps)
        max_rps, lifted, note = rate_limit({**base, **uenv}, args.max_rps)
        uenv["FINSEC_EDGAR_MAX_RPS"] = max_rps
        env = {**base, **uenv, "DAGSTER_HOME": str(write_dagster_yaml(work / "dagster_home")),
               "FINSEC_HOME": str(work / "finsec")}
        selected = resolve_stages(args.stages)
        plan, skipped = stage_plan(selected, universe.filings, args.encoders_max, parents)
        run = {"filings": universe.filings, "filings_requested": filings, "companies": universe.companies,
               "quarters": universe.labels, "universe": args.universe, "seed": args.seed,
               "rate_limit_lifted": lifted, "rate_limit": note, "load_start": loadavg(), "stages": {},
               "skipped": skipped}
        print(f"\n== {universe.filings} filings: {universe.companies} companies x {len(universe.labels)} quarters "
              f"({universe.labels[0]}..{universe.labels[-1]}); {note}", flush=True)
        failed: set[str] = set()
        for stage in plan:
            # a parent that is not selected is read from the lake as it is (rerun one stage over a kept --workdir)
            blocked = sorted(p for p in parents.get(stage, ()) if p in failed)
            if blocked:
                run["skipped"][stage] = f"needs {', '.join(blocked)}, which did not run"
                failed.add(stage)
                continue
            partitions = universe.partitions if stage in PER_FILING else None
            subset = args.last_quarters.get(stage) if partitions else None
            if subset and subset < len(partitions):  # quarters are alike (one filing per company each): a sample of them
                partitions = partitions[-subset:]
            run_config = {}
            if stage == "finetuned_checkpoint" and universe.ciks:  # the company with the most section text
                run_config = {"ops": {stage: {"config": {"cik": busiest_cik(env, universe.ciks)}}}}
            requests_before = universe.requests()
            r = run_stage(stage, partitions, env, work, run_config, nice=args.nice)
            r["edgar_requests"] = universe.requests() - requests_before
            if r["success"]:
                measured = universe.filings * len(partitions) // len(universe.partitions) if partitions else universe.filings
                if partitions and len(partitions) < len(universe.partitions):
                    r["quarters_measured"], r["filings_measured"] = len(partitions), measured
                r["filings_per_s"] = round(measured / r["seconds"], 3) if r["seconds"] > 0 else None
            else:
                failed.add(stage)
            run["stages"][stage] = r
            save(run)
            print(f"   {stage:30s} " + (f"{r['seconds']:9.1f} s  {r.get('filings_per_s') or 0:9.2f} filings/s  "
                                         f"{r['peak_rss_mb']:7.0f} MB" if r["success"] else
                                         f"FAILED: {r.get('error', '')[-400:]}"), flush=True)
        run["lake"] = lake_stats(env, universe.ciks, universe.partitions)
        save(run)
        print(f"   lake: {run['lake']['lake_data_mb']} MB data, queries "
              + ", ".join(f"{q['median_ms']} ms" for q in run["lake"]["queries"]), flush=True)
        extras_here = filings == (args.sizes[0] if args.extras_at == "smallest" else args.sizes[-1])
        if args.backfill and extras_here:
            print("   backfill: launching", flush=True)
            run["backfill"] = guarded(measure_backfill, {**base, **uenv}, work / "backfill", args.backfill_quarters,
                                      args.max_concurrent_runs, args.queue_watch)
            print(f"   backfill: {run['backfill'].get('seconds_to_all_runs')} s to all runs", flush=True)
            save(run)
        if args.ui and extras_here:
            ui_env = {**base, **uenv, "DAGSTER_HOME": str(work / "backfill" / "dagster_home"),
                      "FINSEC_HOME": str(work / "backfill" / "finsec")} if args.backfill else env
            (work / "ui").mkdir(exist_ok=True)
            run["ui"] = guarded(measure_ui, ui_env, work / "ui")
            save(run)
            print(f"   ui: {run['ui']}", flush=True)
        if args.celery and extras_here:
            # the reference is the in-process lake (this run's, or a kept --workdir's)
            assets = [a for a in resolve_stages(args.celery_stages) if a in PER_FILING and a not in failed]
            reference = row_counts(env, assets)
            print(f"   celery: {', '.join(assets)} over {len(universe.partitions)} quarters", flush=True)
            run["celery"] = guarded(measure_celery, {**base, **uenv}, work, universe.partitions, assets, reference,
                                    args.celery_timeout)
            print(f"   celery: {json.dumps({k: v for k, v in run['celery'].items() if 'workers' not in k})}", flush=True)
        run["load_end"] = loadavg()
        run["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        return run
    finally:
        universe.stop()


def guarded(fn, *args) -> dict:
    """One measurement; its failure is recorded (with the traceback's end), not fatal to the others."""
    import traceback

    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - a benchmark section that fails says why and the run goes on
        return {"error": f"{type(exc).__name__}: {exc}"[:3000], "traceback": traceback.format_exc()[-3000:]}


def resolve_stages(value: str) -> list[str]:
    if value == "all":
        return list(ALL_STAGES)
    if value == "cheap":
        return list(CHEAP_STAGES)
    if value == "per-filing":
        return [UNIVERSE_STAGE, *PER_FILING]
    stages = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in stages if s not in ALL_STAGES]
    if unknown:
        raise SystemExit(f"--stages: {unknown} unknown; use all, cheap, per-filing or names from {ALL_STAGES}")
    return stages


def print_table(runs: list[dict]) -> None:
    sizes = [r["filings"] for r in runs]
    stages = [s for s in ALL_STAGES if any(s in r["stages"] for r in runs)]
    head = f"{'stage':30s}" + "".join(f" | {n:>6d} filings: s, filings/s, peak MB" for n in sizes)
    print("\n" + head + "\n" + "-" * len(head))
    for s in stages:
        cells = []
        for r in runs:
            st = r["stages"].get(s)
            if not st:
                cells.append(f" | {'-':>38s}")
            elif not st["success"]:
                cells.append(f" | {'FAILED':>38s}")
            else:
                cells.append(f" | {st['seconds']:9.1f} {st['filings_per_s']:10.2f} {st['peak_rss_mb']:8.0f}" + " " * 8)
        print(f"{s:30s}" + "".join(cells))
    for r in runs:
        print(f"{r['filings']} filings: {r['rate_limit']}; lake {r.get('lake', {}).get('lake_data_mb', '?')} MB; "
              f"load {r['load_start']} -> {r.get('load_end', 'unfinished')}")


def _fit(xs: list[float], ys: list[float], x: float, one_point: str = "proportional") -> float:
    """y at x on the line through the two largest measured points; with one point, proportional (time) or flat
    (memory: one size shows no trend)."""
    pts = sorted(zip(xs, ys))[-2:]
    if len(pts) == 1 or pts[0][0] == pts[1][0]:
        return pts[-1][1] * x / pts[-1][0] if one_point == "proportional" else pts[-1][1]
    (x0, y0), (x1, y1) = pts
    slope = (y1 - y0) / (x1 - x0)
    return y1 + max(slope, 0.0) * (x - x1)


def extrapolate(runs: list[dict], filings: int = 20_000, quarters: int = 40) -> dict:
    """Each stage at ``filings`` over ``quarters`` quarters, from the sizes it ran at.

    Time: the line through the two largest sizes' seconds (a fixed part plus a part per filing; a falling line is
    read as flat per filing). Peak memory: per-filing stages hold one quarter, so their peak follows filings per
    quarter (``filings / quarters`` = 500 here); corpus stages follow the total."""
    out = {}
    for stage in ALL_STAGES:
        pts = [(r["filings"], len(r["quarters"]), r["stages"][stage]) for r in runs
               if r["stages"].get(stage, {}).get("success")]
        if not pts:
            continue
        n = [p[0] for p in pts]
        # a stage run on a sample of quarters (--last-quarters) timed its filings_measured, not the universe's
        seconds = _fit([p[2].get("filings_measured", p[0]) for p in pts], [p[2]["seconds"] for p in pts], filings)
        per_quarter = stage in PER_FILING
        mem_x = [p[0] / p[1] for p in pts] if per_quarter else n
        peak = _fit(mem_x, [p[2]["peak_rss_mb"] for p in pts], filings / quarters if per_quarter else filings, "flat")
        out[stage] = {"seconds": round(seconds, 1), "hours": round(seconds / 3600, 2),
                      "filings_per_s": round(filings / seconds, 3) if seconds > 0 else None,
                      "peak_rss_mb": round(peak, 0), "from_sizes": n,
                      "memory_scales_with": "filings per quarter" if per_quarter else "all filings"}
    return {"filings": filings, "quarters": quarters, "stages": out,
            "total_hours": round(sum(v["seconds"] for v in out.values()) / 3600, 2)}


def print_extrapolation(ex: dict) -> None:
    print(f"\nextrapolated to {ex['filings']} filings over {ex['quarters']} quarters (line through the two largest sizes):")
    print(f"{'stage':30s} {'hours':>8s} {'filings/s':>10s} {'peak MB':>8s}  memory follows")
    for stage, v in ex["stages"].items():
        print(f"{stage:30s} {v['hours']:8.2f} {v['filings_per_s'] or 0:10.2f} {v['peak_rss_mb']:8.0f}  "
              f"{v['memory_scales_with']} (from {v['from_sizes']})")
    print(f"{'total':30s} {ex['total_hours']:8.2f}")


def print_markdown(runs: list[dict], ex: dict) -> None:
    """The same numbers as a Markdown table (for the README and the issue)."""
    sizes = [r["filings"] for r in runs]
    print("\n| stage | " + " | ".join(f"{n} filings: s / filings/s / peak MB" for n in sizes)
          + f" | {ex['filings']} (extrapolated): h / peak MB |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for stage in ALL_STAGES:
        if not any(stage in r["stages"] for r in runs):
            continue
        cells = []
        for r in runs:
            st = r["stages"].get(stage)
            cells.append("not run" if not st else "failed" if not st.get("success") else
                         f"{st['seconds']:.1f} / {st['filings_per_s']:.2f} / {st['peak_rss_mb']:.0f}")
        e = ex["stages"].get(stage)
        cells.append(f"{e['hours']:.2f} / {e['peak_rss_mb']:.0f}" if e else "-")
        print(f"| {stage} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_stage":
        return stage_main(argv[1], argv[2])
    if argv and argv[0] == "--report":  # the table and the extrapolation of a results file, written back into it
        doc = json.loads(Path(argv[1]).read_text())
        runs = [r for r in doc["runs"] if r.get("stages")]
        for r in runs:  # the one peak rule, also for results written before it
            for st in r["stages"].values():
                if st.get("success"):
                    st["peak_rss_mb"] = peak_of(st)
        print_table(runs)
        doc["extrapolation"] = extrapolate(runs)
        print_extrapolation(doc["extrapolation"])
        print_markdown(runs, doc["extrapolation"])
        write_json(doc, argv[1])
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--filings", default="100", help="comma-separated universe sizes, e.g. 100,1000")
    p.add_argument("--quarters", type=int, default=10, help="quarters per universe (companies = filings / quarters)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--universe", default="synthetic", choices=["synthetic", "sample"],
                   help="synthetic (SyntheticUniverse) or the bundled sample as it is (ignores --filings)")
    p.add_argument("--stages", default="all", help="all | per-filing | cheap | comma-separated asset names")
    p.add_argument("--encoders-max", type=int, default=None,
                   help="run filing_summaries/pooled_embeddings only at sizes up to this many filings")
    p.add_argument("--max-rps", default="unlimited", help="FINSEC_EDGAR_MAX_RPS for the loopback replay")
    p.add_argument("--nice", type=int, default=0, help="run each stage under nice -n")
    p.add_argument("--backfill", action=argparse.BooleanOptionalAction, default=True,
                   help="measure a --backfill-quarters backfill's launch and run queue (at --extras-at)")
    p.add_argument("--backfill-quarters", type=int, default=40)
    p.add_argument("--max-concurrent-runs", type=int, default=2)
    p.add_argument("--queue-watch", type=float, default=300,
                   help="at most this many seconds watching the backfill's queue (stops 15 s after all runs exist)")
    p.add_argument("--ui", action=argparse.BooleanOptionalAction, default=True,
                   help="time filing_index's asset page in headless Chromium (at --extras-at)")
    p.add_argument("--celery", action=argparse.BooleanOptionalAction, default=False,
                   help="backfill one size (--extras-at) on two Celery workers and on one (Redis at 127.0.0.1:6379)")
    p.add_argument("--celery-stages", default="filing_index,raw_filings,filing_sections,nlp_scores")
    p.add_argument("--celery-timeout", type=float, default=3600)
    p.add_argument("--workdir", default=None, help="keep everything here (default: a temporary folder, removed)")
    p.add_argument("--json", dest="json_out", default=None, help="write the results here (after every stage)")
    p.add_argument("--append", action="store_true", help="keep the runs already in --json and add these")
    p.add_argument("--last-quarters", default="", metavar="STAGE=K,...",
                   help="run these per-filing stages on the universe's last K quarters only (throughput per filing "
                        "and peak per quarter from a sample of alike quarters), e.g. xbrl_facts=3")
    p.add_argument("--extras-at", choices=["smallest", "largest"], default="smallest",
                   help="the size at which the backfill, UI and Celery measurements run")
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in args.filings.split(",") if x.strip()]
    try:
        args.last_quarters = {k.strip(): int(v) for k, v in (x.split("=") for x in args.last_quarters.split(",") if x.strip())}
    except ValueError:
        raise SystemExit(f"--last-quarters {args.last_quarters!r}: use STAGE=K[,STAGE=K] with K a whole number")
    if bad := sorted(set(args.last_quarters) - set(PER_FILING)):
        raise SystemExit(f"--last-quarters: {bad} are not per-filing stages ({', '.join(PER_FILING)})")
    if not args.sizes or min(args.sizes) <= 0:
        raise SystemExit(f"--filings {args.filings!r}: give positive sizes such as 100,1000")
    if args.quarters <= 0:
        raise SystemExit("--quarters must be positive")
    # a SIGTERM unwinds through the finally blocks that stop the servers and workers this script started
    def on_term(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one would cut the cleanup short
        sys.exit(143)

    signal.signal(signal.SIGTERM, on_term)
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    sys.path.insert(0, str(REPO))
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="finsec-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    parents = parents_of()
    doc = {"benchmark": "scale", "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
                       "uptime_start": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()},
           "command": " ".join([Path(sys.executable).name, "benchmarks/scale.py", *argv]), "runs": []}
    if args.append and args.json_out and Path(args.json_out).exists():
        previous = json.loads(Path(args.json_out).read_text())
        doc["runs"] = previous.get("runs", [])
        doc["earlier"] = [{k: v for k, v in previous.items() if k != "runs"}] + previous.get("earlier", [])
    original = [json.loads(json.dumps(r)) for r in doc["runs"]]

    def merged(new: list[dict]) -> list[dict]:
        """The earlier runs with these added; with --append, a rerun of some stages at a size already measured
        (same filings, quarters and seed) updates that run's stages instead."""
        runs = json.loads(json.dumps(original))
        for run in new:
            same = next((r for r in runs if args.append and (r["filings"], r["quarters"], r["seed"])
                         == (run["filings"], run["quarters"], run["seed"])), None)
            if same is None:
                runs.append(run)
            else:
                same["stages"] = {**same["stages"], **run["stages"]}
                same.update({k: run[k] for k in ("lake", "backfill", "ui", "celery") if k in run})
                same["reruns"] = same.get("reruns", []) + [{"stages": list(run["stages"]), "load_start": run["load_start"],
                                                            "uptime": run.get("uptime")}]
        return runs

    unfinished: list[dict] = []

    def save(run: dict) -> None:  # after every stage: a long run that is stopped keeps what it measured
        unfinished[:] = [{**run, "partial": True}]
        if args.json_out:
            write_json({**doc, "runs": merged(done + unfinished)}, args.json_out)

    done: list[dict] = []
    try:
        for n in args.sizes:
            done.append(run_size(n, args, root / f"n{n}", parents, save))
            unfinished.clear()
            doc["runs"] = merged(done)
            if args.json_out:
                write_json(doc, args.json_out)
    finally:
        doc["runs"] = merged(done + unfinished)  # a stopped run keeps what it measured, and the earlier runs
        doc["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        doc["machine"]["uptime_end"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        if args.json_out:
            write_json(doc, args.json_out)
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    print_table(done)
    if done:
        print_extrapolation(extrapolate(doc["runs"]))
    return 0 if all(s["success"] for r in done for s in r["stages"].values()) else 1


def write_json(doc: dict, path: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
