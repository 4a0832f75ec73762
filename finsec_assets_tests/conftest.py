"""Shared fixtures: a temporary FINSEC_HOME/DAGSTER_HOME, the EDGAR replay server, a moto S3 server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_EDGAR = Path(__file__).resolve().parents[1].parent / "shared" / "edgar"
FINSEC_VARS = ("FINSEC_HOME", "FINSEC_OBJECT_STORE_URL", "FINSEC_EDGAR_SOURCE", "FINSEC_EDGAR_USER_AGENT",
               "FINSEC_EDGAR_WWW_URL", "FINSEC_EDGAR_DATA_URL", "FINSEC_UNIVERSE", "FINSEC_EDGAR_MAX_RPS",
               "FINSEC_EXECUTOR", "DAGSTER_HOME", "FINSEC_CATALOG_URL", "FINSEC_FORMS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def finsec_env(tmp_path, monkeypatch):
    """A clean FINSEC_HOME and DAGSTER_HOME for one test, sample mode."""
    for var in FINSEC_VARS:
        monkeypatch.delenv(var, raising=False)
    home, dagster_home = tmp_path / "finsec", tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("FINSEC_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("FINSEC_EDGAR_SOURCE", "sample")
    return home


@pytest.fixture
def replay_server():
    from finsec_assets.edgar.replay import ReplayServer

    with ReplayServer() as server:
        yield server


@pytest.fixture(scope="session")
def moto_s3():
    """A moto S3 server on 127.0.0.1 (a real endpoint over sockets)."""
    exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(exe).exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.skip("moto_server did not start within 30 s")
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="finsec-test")
    yield endpoint
    proc.terminate()
    proc.wait(10)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def lake_postgres_url():
    """A fresh, empty Postgres database on 127.0.0.1:5432 for one test (dropped afterwards)."""
    import uuid

    psycopg2 = pytest.importorskip("psycopg2")
    admin_url = os.environ.get("FINSEC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        admin = psycopg2.connect(admin_url, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no Postgres at {admin_url} ({str(exc).strip()})")
    admin.autocommit = True
    name = f"finsec_test_{uuid.uuid4().hex[:10]}"
    admin.cursor().execute(f"CREATE DATABASE {name}")
    base = admin_url.rsplit("/", 1)[0]
    yield f"{base}/{name}".replace("postgresql://", "postgres://", 1)
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()
