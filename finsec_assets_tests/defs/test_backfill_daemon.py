"""A grown universe launches a real backfill through the sensor daemon (what the UI's Backfills page lists)."""

import os
import subprocess
import sys
import time

import dagster as dg
import pytest

from finsec_assets.defs.edgar.assets import company_universe

from .helpers import materialize


@pytest.mark.timeout(240)
def test_sensor_daemon_creates_the_backfill(finsec_env, monkeypatch, tmp_path):
    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA,WMT")
    monkeypatch.setenv("FINSEC_BACKFILL_START", "2023-07-01")
    monkeypatch.setenv("FINSEC_BACKFILL_END", "2024-01-01")
    instance = dg.DagsterInstance.get()
    assert materialize([company_universe], selection=[company_universe], instance=instance).success
    bindir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    target = ["-m", "finsec_assets.definitions"]
    subprocess.run([f"{bindir}/dagster", "sensor", "start", "universe_backfill_sensor", *target], env=env, check=True,
                   capture_output=True, timeout=120)
    log = open(tmp_path / "daemon.log", "w")
    daemon = subprocess.Popen([f"{bindir}/dagster-daemon", "run", *target], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.time() + 180
        backfills = []
        while time.time() < deadline and not backfills:
            time.sleep(2)
            backfills = instance.get_backfills()
        assert backfills, open(tmp_path / "daemon.log").read()[-3000:]
        backfill = backfills[0]
        assert backfill.tags["finsec/trigger"] == "universe_backfill_sensor"
        assert backfill.tags["finsec/new_ciks"] == "104169,1045810"
        targets = backfill.asset_backfill_data.target_subset
        quarters = {pk for sub in targets.partitions_subsets_by_asset_key.values() for pk in sub.get_partition_keys()}
        assert quarters == {"2023-07-01", "2023-10-01", "2024-01-01"}
    finally:
        os.killpg(daemon.pid, 15)
        daemon.wait(30)
        log.close()
