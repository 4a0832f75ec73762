"""docker/: the compose file validates, and every command it runs works outside Docker against the real configs.

No Docker engine here. `docker-compose config` checks the file the way `up` reads it; then the compose services'
own commands (paths mapped from the image to the repository) run on loopback: the gRPC code location with its
healthcheck, the webserver on docker/workspace.yaml, the daemon's entrypoint, and the Celery workers' arguments,
all on an instance built from docker/dagster.yaml over a real Postgres and a moto S3.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from ..conftest import free_port
from .conftest import BIN, DOCKER, REPO, stop_process

COMPOSE = DOCKER / "docker-compose.yml"
SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "MINIO_ROOT_PASSWORD": "minio-secret"}
IMAGE_SERVICES = {"code-location", "webserver", "daemon", "worker-cpu", "worker-gpu", "worker-gpu-2", "serving",
                  "serving-gpu"}
# Where the images put the repository's files (Dockerfile.cpu/.gpu), mapped back to the repository.
IMAGE_PATHS = {"/opt/dagster/dagster_home/workspace.yaml": DOCKER / "workspace.yaml",
               "/opt/dagster/celery.yaml": DOCKER / "celery.yaml"}


def compose(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (apt-get install -y --no-install-recommends docker-compose)")
    base = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run([exe, "-f", str(COMPOSE), *args], env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def compose_config() -> dict:
    result = compose("config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def local_command(command: list[str], **replace: str) -> list[str]:
    """A compose command as it runs here: image paths to repository paths, compose's $$ to $, and substitutions."""
    out = []
    for arg in command:
        for image_path, repo_path in IMAGE_PATHS.items():
            arg = arg.replace(image_path, str(repo_path))
        arg = arg.replace("$$", "$")
        for old, new in replace.items():
            arg = arg.replace(old, new)
        out.append(arg)
    return out


def test_compose_file_is_valid_and_has_every_service(compose_config):
    services = compose_config["services"]
    assert set(services) == {"postgres", "redis", "minio", "minio-buckets"} | IMAGE_SERVICES
    for name in IMAGE_SERVICES:
        env = services[name]["environment"]
        assert env["DAGSTER_POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"], name
        assert env["AWS_SECRET_ACCESS_KEY"] == SECRETS["MINIO_ROOT_PASSWORD"], name
        assert env["FINSEC_OBJECT_STORE_URL"].startswith("s3://"), name  # workers on other hosts share tables
        assert env["FINSEC_CATALOG_URL"] == f"postgres://dagster:{SECRETS['POSTGRES_PASSWORD']}@postgres:5432/finsec_lake"
        assert env["FINSEC_CELERY_BROKER"] == "redis://redis:6379/0", name
    assert services["code-location"]["command"][:3] == ["dagster", "code-server", "start"]
    assert "grpc-health-check" in services["code-location"]["healthcheck"]["test"]
    assert services["webserver"]["depends_on"]["code-location"]["condition"] == "service_healthy"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]


def test_workers_consume_the_right_queues_and_the_gpu_worker_reserves_a_gpu(compose_config):
    services = compose_config["services"]

    def queues(cmd):
        return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-q"]

    assert queues(services["worker-cpu"]["command"]) == ["dagster"]
    for name, device in (("worker-gpu", "0"), ("worker-gpu-2", "1")):  # the second one behind the gpu2 profile
        assert queues(services[name]["command"]) == ["gpu"], name
        assert "--concurrency=1" in services[name]["command"], name
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "device_ids": [device], "capabilities": ["gpu"]}], name
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile.gpu", name
    assert services["worker-gpu-2"]["profiles"] == ["gpu2"] and "profiles" not in services["worker-gpu"]
    assert services["worker-cpu"]["build"]["dockerfile"] == "docker/Dockerfile.cpu"
    assert "deploy" not in services["worker-cpu"]


def test_missing_secrets_are_refused_by_name():
    result = compose("config", env={"MINIO_ROOT_PASSWORD": "x"})
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_images_put_the_configs_where_the_commands_look_for_them():
    for dockerfile in ("Dockerfile.cpu", "Dockerfile.gpu"):
        text = (DOCKER / dockerfile).read_text()
        assert "DAGSTER_HOME=/opt/dagster/dagster_home" in text and "FINSEC_CELERY_CONFIG=/opt/dagster/celery.yaml" in text
        assert "COPY docker/dagster.yaml docker/workspace.yaml ${DAGSTER_HOME}/" in text
        assert "COPY docker/celery.yaml ${FINSEC_CELERY_CONFIG}" in text
        for line in re.findall(r"^COPY (.+)$", text, flags=re.M):
            for source in line.split()[:-1]:
                assert (REPO / source).exists(), f"{dockerfile}: COPY {source} does not exist"
        assert '-c requirements.lock "torch==${TORCH_VERSION}" .' in text  # the same pyproject and lock as make install
    assert "FROM ${CUDA_IMAGE}" in (DOCKER / "Dockerfile.gpu").read_text()
    assert "nvidia/cuda:" in (DOCKER / "Dockerfile.gpu").read_text()


def test_celery_yaml_is_valid_worker_config_and_matches_the_executor(monkeypatch):
    from dagster_celery.cli import get_validated_config

    from finsec_assets.defs.executors import CELERY_CONFIG_SOURCE, celery_executor_config

    monkeypatch.setenv("FINSEC_CELERY_BROKER", "redis://redis:6379/0")
    monkeypatch.setenv("FINSEC_CELERY_BACKEND", "redis://redis:6379/1")
    validated = get_validated_config(str(DOCKER / "celery.yaml"))  # what `dagster-celery worker start -y` does
    assert validated["broker"] == "redis://redis:6379/0" and validated["backend"] == "redis://redis:6379/1"
    assert validated["config_source"] == CELERY_CONFIG_SOURCE
    run_side = celery_executor_config({**os.environ, "FINSEC_CELERY_CONFIG": str(DOCKER / "celery.yaml")})
    assert run_side["broker"] == validated["broker"] and run_side["config_source"] == validated["config_source"]
    with pytest.raises(ValueError, match="FINSEC_CELERY_BACKEND"):
        celery_executor_config({"FINSEC_CELERY_CONFIG": str(DOCKER / "celery.yaml"), "FINSEC_CELERY_BROKER": "redis://x"})


@pytest.fixture(scope="module")
def deployment_home(tmp_path_factory, postgres_url, moto_s3):
    """A DAGSTER_HOME holding docker/dagster.yaml as is, with the env compose would give it, on loopback services."""
    if postgres_url is None:
        pytest.skip("docker/dagster.yaml stores everything in Postgres: no Postgres on 127.0.0.1:5432")
    pg = urlparse(postgres_url)
    home = tmp_path_factory.mktemp("deployment") / "dagster_home"
    home.mkdir()
    shutil.copy(DOCKER / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSEC_", "DAGSTER_"))}
    env.update({
        "DAGSTER_HOME": str(home), "DAGSTER_POSTGRES_HOST": pg.hostname, "DAGSTER_POSTGRES_PORT": str(pg.port),
        "DAGSTER_POSTGRES_USER": pg.username, "DAGSTER_POSTGRES_PASSWORD": "", "DAGSTER_POSTGRES_DB": pg.path[1:],
        "DAGSTER_COMPUTE_LOG_BUCKET": "finsec-test", "FINSEC_HOME": str(home.parent / "finsec"),
        "FINSEC_EDGAR_SOURCE": "sample", "FINSEC_CODE_LOCATION_HOST": "127.0.0.1",
        "FINSEC_CODE_LOCATION_PORT": str(free_port()), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    return env


def test_dagster_yaml_builds_the_deployment_instance(deployment_home, monkeypatch):
    import dagster as dg
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    for k, v in deployment_home.items():
        monkeypatch.setenv(k, v)
    # The daemon's entrypoint sets the gpu pool before it starts.
    subprocess.run([str(BIN / "dagster"), "instance", "concurrency", "set", "gpu", "1"], env=deployment_home,
                   check=True, capture_output=True, timeout=120)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
        assert instance.compute_log_manager._s3_session.meta.endpoint_url == os.environ["AWS_ENDPOINT_URL"]  # noqa: SLF001
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
        assert instance.run_retries_enabled
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1


def _wait(predicate, seconds: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode}\n{log.read_text()[-3000:] if log else ''}")
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {seconds:.0f}s\n{log.read_text()[-3000:] if log else ''}")


def _start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)



def test_every_compose_entrypoint_runs_outside_docker(compose_config, deployment_home, tmp_path, monkeypatch):
    services, env = compose_config["services"], deployment_home
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    grpc_port, ui_port = env["FINSEC_CODE_LOCATION_PORT"], str(free_port())
    bin_path = lambda cmd: [str(BIN / cmd[0])] + cmd[1:] if (BIN / cmd[0]).exists() else cmd  # noqa: E731
    started = []
    try:
        # The code location, then its own healthcheck command.
        code = local_command(services["code-location"]["command"], **{"0.0.0.0": "127.0.0.1", "4000": grpc_port})
        started.append(code_proc := _start(bin_path(code), env, tmp_path / "code.log"))
        health = local_command(services["code-location"]["healthcheck"]["test"][1:], **{"4000": grpc_port})
        healthy = lambda: subprocess.run(bin_path(health), env=env, capture_output=True, timeout=60).returncode == 0  # noqa: E731
        _wait(healthy, 120, "code location healthcheck", code_proc, tmp_path / "code.log")

        # The webserver, reading docker/workspace.yaml: the location loads over gRPC.
        web = local_command(services["webserver"]["command"], **{"0.0.0.0": "127.0.0.1", "3000": ui_port})
        started.append(web_proc := _start(bin_path(web), env, tmp_path / "web.log"))
        _wait(lambda: _http_ok(f"http://127.0.0.1:{ui_port}/server_info"), 120, "webserver", web_proc, tmp_path / "web.log")
        entries = _graphql(ui_port, "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                           "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
        [entry] = entries["workspaceOrError"]["locationEntries"]
        assert entry["name"] == "finsec_assets" and entry["loadStatus"] == "LOADED"
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry

        # The daemon's entrypoint (pool limit, then dagster-daemon run): every daemon heartbeats into Postgres.
        daemon = local_command(services["daemon"]["command"])
        started.append(daemon_proc := _start(daemon, {**env, "FINSEC_GPU_SLOTS": "1"}, tmp_path / "daemon.log"))
        import dagster as dg

        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            beating = lambda: {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR", "BACKFILL", "MONITORING"} <= set(  # noqa: E731
                instance.get_daemon_heartbeats())
            _wait(beating, 120, "daemon heartbeats", daemon_proc, tmp_path / "daemon.log")
            assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
    finally:
        for proc in reversed(started):
            stop_process(proc)

    # The workers: dagster-celery accepts the compose arguments as given (the config file exists and validates);
    # test_celery.py runs real workers with these same arguments.
    from dagster_celery.cli import worker_start_command

    for name in ("worker-cpu", "worker-gpu", "worker-gpu-2"):
        args = local_command(services[name]["command"])
        assert args[:3] == ["dagster-celery", "worker", "start"]
        ctx = worker_start_command.make_context("start", args[3:])
        assert ctx.params["app"] == "dagster_celery.app" and Path(ctx.params["config_yaml"]).is_file()
        assert ctx.params["additional_args"][0].startswith("--concurrency=")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _graphql(port: str, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


def test_postgres_init_script_creates_the_lake_catalog_database(tmp_path):
    """docker/postgres-init runs in the postgres container on a new volume; here against the machine's Postgres."""
    import uuid

    psycopg2 = pytest.importorskip("psycopg2")
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    try:
        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no Postgres on 127.0.0.1:5432 ({exc})")
    name = f"finsec_lake_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres", "FINSEC_LAKE_DB": name,
           "PGHOST": "127.0.0.1", "PGPORT": "5432"}
    script = DOCKER / "postgres-init" / "10-finsec-lake.sh"
    subprocess.run(["sh", str(script)], env=env, check=True, capture_output=True, timeout=60)
    try:
        from finsec_assets.settings import Settings
        from finsec_assets.storage.lake import Lake, location_from_settings

        settings = Settings.from_env({"FINSEC_HOME": str(tmp_path),
                                      "FINSEC_CATALOG_URL": f"postgres://postgres@127.0.0.1:5432/{name}"})
        lake = Lake(location_from_settings(settings))
        import pandas as pd

        lake.replace_partition("t", "2024-01-01", pd.DataFrame({"a": [1]}))
        assert lake.sql("select count(*) n from t")["n"][0] == 1
        lake.close()
    finally:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
        admin.autocommit = True
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_serving_services_check_readiness_and_need_a_token(compose_config):
    services = compose_config["services"]
    for name, dockerfile in (("serving", "docker/Dockerfile.cpu"), ("serving-gpu", "docker/Dockerfile.gpu")):
        svc = services[name]
        assert svc["command"][:3] == ["python", "-m", "finsec_assets.serve"] and "0.0.0.0" in svc["command"], name
        assert "/readyz" in " ".join(svc["healthcheck"]["test"]), name
        assert "FINSEC_SERVE_TOKEN" in svc["environment"], name  # the service refuses 0.0.0.0 without one
        assert svc["build"]["dockerfile"] == dockerfile, name
        assert svc["profiles"] == [name], name
        assert str(svc["ports"][0]).startswith("127.0.0.1:") or svc["ports"][0].get("host_ip") == "127.0.0.1", name
    assert services["serving-gpu"]["environment"]["FINSEC_SERVE_DEVICE"] == "cuda"
    assert services["serving-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
