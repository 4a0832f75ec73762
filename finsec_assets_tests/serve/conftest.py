"""Serving fixtures: a FINSEC_HOME with small published models (built once per session) and real uvicorn servers
started with `python -m finsec_assets.serve` on free loopback ports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ..conftest import FINSEC_VARS, free_port
from .publish import publish_causal_lm, publish_rating_models

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789abcdef"


class Server:
    def __init__(self, home: Path, log: Path, **env: str):
        self.home, self.log_path, self.port = home, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if k not in FINSEC_VARS and not k.startswith("FINSEC_SERVE_")}
        self.env = {**base, "FINSEC_HOME": str(home), "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1",
                    "TOKENIZERS_PARALLELISM": "false", "FINSEC_SERVE_POLL_SECONDS": "0.5", **env}
        self.proc: subprocess.Popen | None = None

    def start(self, ready_within: float = 240) -> Server:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "finsec_assets.serve", "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log"],
            cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + ready_within
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server not ready within {ready_within} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


@pytest.fixture(scope="session")
def published_home(tmp_path_factory):
    """FINSEC_HOME with a finetuned_checkpoint (tiny GPT-J) and rating_models published (once per session)."""
    home = tmp_path_factory.mktemp("serve") / "finsec"
    store = str(home / "objects")
    version = publish_causal_lm(store, seed=1, work=home.parent / "work")
    publish_rating_models(store)
    return home, version


@pytest.fixture(scope="session")
def server(published_home, tmp_path_factory):
    home, _ = published_home
    s = Server(home, tmp_path_factory.mktemp("logs") / "server.log", FINSEC_SERVE_TOKEN=TOKEN,
               FINSEC_SERVE_MAX_TEXTS="8", FINSEC_SERVE_MAX_CHARS="400000", FINSEC_SERVE_MAX_NEW_TOKENS="64",
               FINSEC_SERVE_MAX_DOCUMENT_BYTES="3000000").start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def bare_server(tmp_path_factory):
    """Nothing published, no token, a 0.3 s request timeout."""
    home = tmp_path_factory.mktemp("bare") / "finsec"
    s = Server(home, tmp_path_factory.mktemp("logs") / "bare.log", FINSEC_SERVE_TIMEOUT_SECONDS="0.3").start()
    yield s
    s.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as c:
        yield c
