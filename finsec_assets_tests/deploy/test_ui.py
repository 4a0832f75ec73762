"""The Dagster UI as a person uses it: open the asset graph, pick filing_index, launch its 2024Q1 partition.

Real webserver on 127.0.0.1 over a sample whose company_universe is already materialized, driven by Debian's
headless Chromium through Selenium and Debian's chromedriver (nothing is downloaded at test time). The screenshot
of the graph after the run is kept in finsec_assets_tests/deploy/artifacts/ (or $FINSEC_TEST_ARTIFACTS).
"""

from __future__ import annotations

import os
import shutil
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from ..conftest import free_port
from .conftest import stop_process
from .conftest import BIN, REPO

PARTITION = "2024-01-01"
LOCATION = "finsec_assets.definitions"  # `dagster-webserver -m finsec_assets.definitions` names the location so
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1600,1000"]
RUN_TIMEOUT_S = 300


def artifacts_dir() -> Path:
    """Screenshots land here; the folder ignores its own contents, so nothing here is ever committed."""
    path = Path(os.environ.get("FINSEC_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return path


@pytest.fixture
def webserver(tmp_path, monkeypatch):
    """A DAGSTER_HOME with company_universe materialized, and dagster-webserver serving the project over it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    # Runs launched from the UI start at once (no daemon here); no first-visit newsletter dialog over the page.
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSEC_", "DAGSTER_"))}
    env.update({"DAGSTER_HOME": str(home), "FINSEC_HOME": str(tmp_path / "finsec"), "FINSEC_EDGAR_SOURCE": "sample",
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    for k in [k for k in os.environ if k.startswith(("FINSEC_", "DAGSTER_"))]:
        monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)

    from finsec_assets.definitions import defs

    instance = dg.DagsterInstance.get()
    seeded = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=[dg.AssetKey("company_universe")], instance=instance)
    assert seeded.success

    port = free_port()
    log = tmp_path / "webserver.log"
    proc = subprocess.Popen([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-m", LOCATION],
                            cwd=REPO, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, f"webserver not up in 120 s: {log.read_text()[-3000:]}"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5).close()
                break
            except OSError:
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}", instance
    finally:
        stop_process(proc, grace=30)
        instance.dispose()


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Chromium is absent (apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a browser or driver online
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


class Page:
    """The few gestures the test makes, each waiting for the UI the way a person would."""

    def __init__(self, driver, timeout: float = 60):
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.wait = WebDriverWait(driver, timeout, poll_frequency=0.25)

    def element_with_text(self, text: str):
        from selenium.webdriver.common.by import By

        xpath = f"//*[normalize-space(text())='{text}']"
        return self.wait.until(lambda d: next((e for e in d.find_elements(By.XPATH, xpath) if e.is_displayed()), None),
                               message=f"no visible element with text {text!r}")

    def button(self, starts_with: str):
        from selenium.webdriver.common.by import By

        def find(d):
            for b in d.find_elements(By.TAG_NAME, "button"):
                if b.is_displayed() and b.is_enabled() and b.text.strip().startswith(starts_with):
                    return b
            return None

        return self.wait.until(find, message=f"no enabled button starting {starts_with!r}")

    def maybe_click(self, text: str) -> None:
        from selenium.webdriver.common.by import By

        for b in self.driver.find_elements(By.TAG_NAME, "button"):
            if b.is_displayed() and b.text.strip() == text:
                b.click()
                return

    def input_with_placeholder(self, starts_with: str):
        from selenium.webdriver.common.by import By

        return self.wait.until(
            lambda d: next((i for i in d.find_elements(By.TAG_NAME, "input")
                            if (i.get_attribute("placeholder") or "").startswith(starts_with) and i.is_displayed()), None),
            message=f"no input with a placeholder starting {starts_with!r}")


def test_launch_one_partition_from_the_asset_graph(webserver, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, instance = webserver
    page = Page(browser)
    shots = artifacts_dir()
    try:
        # The asset graph of the edgar group: company_universe (materialized) feeding filing_index.
        browser.get(f"{url}/locations/{LOCATION}/asset-groups/edgar")
        page.element_with_text("company_universe")
        page.element_with_text("filing_index").click()
        page.button("Materialize selected").click()
        page.element_with_text("Launch runs to materialize filing_index")

        # One partition: the Custom selection, typed as a person would.
        page.maybe_click("Show all partitions")
        box = page.input_with_placeholder("ex:")
        box.click()
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(PARTITION, Keys.ENTER)
        page.element_with_text("1 partition")
        page.button("Launch 1 run").click()

        run = _wait_for_run(instance, PARTITION)
        assert run.status == dg.DagsterRunStatus.SUCCESS, instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        assert run.tags.get("dagster/partition") == PARTITION
        event = instance.get_latest_materialization_event(dg.AssetKey("filing_index"))
        assert event is not None and event.dagster_event.partition == PARTITION
        assert event.run_id == run.run_id

        # Back on the graph: filing_index now has a latest event and all its checks (run with it) passed.
        browser.get(f"{url}/locations/{LOCATION}/asset-groups/edgar")
        page.element_with_text("filing_index")
        page.wait.until(lambda d: re.search(r"\b(\d+) / \1 Passed", d.find_element(By.TAG_NAME, "body").text),
                        message="the graph does not show filing_index's passed check")
        time.sleep(1)  # let the last layout pass settle before the picture
        shot = shots / "asset_graph_after_ui_launch.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
    except BaseException:
        browser.save_screenshot(str(shots / "asset_graph_failure.png"))
        raise


def _wait_for_run(instance, partition: str) -> dg.DagsterRun:
    deadline = time.time() + RUN_TIMEOUT_S
    while time.time() < deadline:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": partition}))
        if runs and runs[0].is_finished:
            return runs[0]
        time.sleep(1)
    raise AssertionError(f"the run launched from the UI for {partition} did not finish within {RUN_TIMEOUT_S}s")
