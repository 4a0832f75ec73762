"""Real services for the deployment tests: a private Redis database, a fresh Postgres database, Celery workers."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCKER = REPO / "docker"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_HOST, PG_PORT = "127.0.0.1", 5432


def stop_process(proc: subprocess.Popen, grace: float = 20) -> None:
    """Terminate a server we started, killing it if it does not stop in ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_url():
    """A Redis database no one else is using (claimed with a key), emptied afterwards: no cross-talk between runs."""
    if not reachable(REDIS_HOST, REDIS_PORT):
        pytest.skip(f"no Redis on {REDIS_HOST}:{REDIS_PORT} (apt-get install redis-server)")
    import redis

    claim = f"finsec-deploy-test:{uuid.uuid4().hex}"
    for db in random.sample(range(2, 16), 14):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        if client.dbsize() == 0 and client.set("finsec-deploy-test:claim", claim, nx=True, ex=3600):
            break
    else:
        pytest.skip("every Redis database 2-15 on 127.0.0.1:6379 is in use")
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
    client.flushdb()


@pytest.fixture(scope="module")
def postgres_url():
    """A fresh Postgres database for Dagster's storage (trust auth as user postgres), dropped afterwards.

    The +psycopg2 scheme: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which is not installed.
    """
    if not reachable(PG_HOST, PG_PORT):
        yield None
        return
    import psycopg2

    name = f"finsec_deploy_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", connect_timeout=5)
    except psycopg2.OperationalError:
        yield None
        return
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{name}"
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def write_dagster_home(path: Path, postgres_url: str | None) -> Path:
    """A DAGSTER_HOME on Postgres when there is one, else on SQLite files (never an ephemeral instance)."""
    path.mkdir(parents=True, exist_ok=True)
    lines = ["telemetry:", "  enabled: false"]
    if postgres_url:
        lines += ["storage:", "  postgres:", f"    postgres_url: {postgres_url}"]
    (path / "dagster.yaml").write_text("\n".join(lines) + "\n")
    return path


class Workers:
    """Real `dagster-celery worker start` processes, each in its own process group so a kill takes the whole worker."""

    def __init__(self, env: dict, log_dir: Path):
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        from celery import Celery

        self.app = Celery(broker=env["FINSEC_CELERY_BROKER"], backend=env["FINSEC_CELERY_BACKEND"])

    def start(self, queue: str, label: str) -> str:
        name = f"{label}-{uuid.uuid4().hex[:6]}"
        node = f"{name}@{socket.gethostname()}"
        log = open(self.log_dir / f"{name}.log", "w")
        cmd = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
               "-y", str(DOCKER / "celery.yaml"), "-q", queue, "-n", name, "--", "--concurrency=1"]
        self.procs[node] = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.procs[node].poll() is not None:
                raise RuntimeError(f"worker {node} exited with {self.procs[node].returncode}: {self.log(node)[-3000:]}")
            if self.app.control.ping(destination=[node], timeout=1.0, limit=1):
                return node
        raise RuntimeError(f"worker {node} did not answer a ping within 90 s: {self.log(node)[-3000:]}")

    def log(self, node: str) -> str:
        return (self.log_dir / f"{node.split('@')[0]}.log").read_text(errors="replace")

    def kill(self, node: str) -> None:
        proc = self.procs.pop(node)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)

    def stop_all(self) -> None:
        for node in list(self.procs):
            self.kill(node)
        self.app.close()
