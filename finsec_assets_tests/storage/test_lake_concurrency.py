"""The lake under real concurrency: separate processes writing at once, writers SIGKILLed mid-write, and two
"hosts" (two FINSEC_HOMEs) sharing a Postgres catalog and an S3 data path."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from finsec_assets.settings import Settings
from finsec_assets.storage.lake import Lake, location_from_settings

REPO = Path(__file__).resolve().parents[2]
WRITER = [sys.executable, "-m", "finsec_assets_tests.storage.lake_writer"]


def env_for(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSEC_")}
    env.update({"FINSEC_HOME": str(home), "PYTHONPATH": str(REPO), **extra})
    return env


def lake_of(env: dict) -> Lake:
    return Lake(location_from_settings(Settings.from_env(env)))


def test_four_processes_replacing_the_same_and_different_partitions(tmp_path):
    env = env_for(tmp_path / "home")
    shared = ["2024-01-01", "2024-04-01"]
    procs = []
    for w in range(4):
        own = [f"20{10 + w}-0{m}-01" for m in (1, 4, 7)]
        partitions = [p for pair in zip(own, shared + shared[:1]) for p in pair]  # own and shared, interleaved
        procs.append(subprocess.Popen(WRITER + ["replace", "t", "3000", f"w{w}", *partitions], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    writes = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        writes += [json.loads(line) for line in out.splitlines()]
    assert len(writes) == 24
    lake = lake_of(env)
    stored = lake.sql("select partition_key, count(*) n, count(distinct accession) a, count(distinct batch) b, "
                      "any_value(batch) batch from t group by 1 order by 1")
    assert len(stored) == 14  # 12 own quarters + 2 shared ones: nothing lost
    assert (stored["n"] == 3000).all() and (stored["a"] == 3000).all()  # no duplicates
    assert (stored["b"] == 1).all()  # each quarter holds exactly one write, never a mix
    # the shared quarters hold the write committed last
    last = {}
    for w in sorted(writes, key=lambda w: w["snapshot"]):
        last[w["partition"]] = w["batch"]
    assert dict(zip(stored["partition_key"], stored["batch"])) == last
    snaps = lake.snapshots()
    assert snaps["commit_message"].fillna("").str.startswith("replace t partition").sum() == 24  # one snapshot per write
    assert len({w["snapshot"] for w in writes}) == 24


@pytest.mark.parametrize("kill_after_s", [0.05, 0.4, 1.0, 2.0])
def test_a_writer_killed_mid_write_leaves_the_table_as_it_was(tmp_path, kill_after_s):
    env = env_for(tmp_path / "home")
    subprocess.run(WRITER + ["big", "t", "20000", "old", "2024-01-01"], env=env, check=True, capture_output=True,
                   timeout=300)
    lake = lake_of(env)
    proc = subprocess.Popen(WRITER + ["big", "t", "200000", "new", "2024-01-01"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    deadline = time.monotonic() + kill_after_s
    seen = set()
    while time.monotonic() < deadline:  # readers during the write see one whole version
        rows = lake.sql("select batch, count(*) n from t group by 1").values.tolist()
        assert rows in ([["old", 20000]], [["new", 200000]]), rows
        seen.add(rows[0][0])
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    rows = lake.sql("select batch, count(*) n, count(distinct accession) a from t group by 1").values.tolist()
    assert rows in ([["old", 20000, 20000]], [["new", 200000, 200000]]), rows
    # the next write succeeds (a lock the dead writer held is gone) and is whole
    snapshot = lake.replace_partition("t", "2024-01-01", lake.read_partition("t", "2024-01-01").head(5).assign(batch="next"))
    assert lake.sql("select batch, count(*) n from t group by 1").values.tolist() == [["next", 5]]
    assert snapshot == int(lake.snapshots()["snapshot_id"].max())


def test_two_hosts_share_a_postgres_catalog_and_s3(tmp_path, moto_s3, lake_postgres_url):
    shared = {"FINSEC_CATALOG_URL": lake_postgres_url, "FINSEC_OBJECT_STORE_URL": f"s3://finsec-test/{uuid.uuid4().hex[:8]}"}
    hosts = [env_for(tmp_path / name, **shared) for name in ("host-a", "host-b")]
    quarters = {0: ["2023-07-01", "2023-10-01", "2024-01-01"], 1: ["2024-04-01", "2024-07-01", "2024-01-01"]}
    procs = [subprocess.Popen(WRITER + ["replace", "sections", "2000", f"host{i}", *quarters[i]], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i, env in enumerate(hosts)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    views = []
    for env in hosts:  # each host reads everything, through its own process
        out = subprocess.run(WRITER + ["count", "sections"], env=env, check=True, capture_output=True, text=True,
                             timeout=300)
        views.append(json.loads(out.stdout))
    assert views[0] == views[1]
    assert [row[0] for row in views[0]] == ["2023-07-01", "2023-10-01", "2024-01-01", "2024-04-01", "2024-07-01"]
    assert all(n == a == 2000 and b == 1 for _, n, a, b in views[0])
    assert not (tmp_path / "host-a" / "lake.sqlite").exists()  # nothing host-local
    lake = lake_of(hosts[0])
    files = lake.sql("select data_file from ducklake_list_files('lake', 'sections')")["data_file"].tolist()
    assert files and all(f.startswith(shared["FINSEC_OBJECT_STORE_URL"] + "/lake/") for f in files)
