"""FINSEC_EXECUTOR=celery against a real Redis, real workers on two queues, and Postgres-backed Dagster storage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from .conftest import BIN, REPO, Workers, write_dagster_home

RUN_BOUND_S = 120  # the killed run must be over well within this


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory, redis_url, postgres_url):
    """Env, instance and workers: one on the default `dagster` queue, one on `gpu`; all killed at teardown."""
    root = tmp_path_factory.mktemp("celery")
    dagster_home = write_dagster_home(root / "dagster_home", postgres_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSEC_", "DAGSTER_"))}
    env.update({
        "DAGSTER_HOME": str(dagster_home), "FINSEC_HOME": str(root / "finsec"), "FINSEC_EDGAR_SOURCE": "sample",
        "FINSEC_EXECUTOR": "celery", "FINSEC_CELERY_BROKER": redis_url, "FINSEC_CELERY_BACKEND": redis_url,
        "FINSEC_CELERY_CONFIG": str(REPO / "docker" / "celery.yaml"), "FINSEC_CELERY_WORKER_LOST_SECONDS": "8",
        "FINSEC_TEST_STARTED_DIR": str(root), "PYTHONPATH": str(REPO),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # dagster-celery execs `celery` from PATH
    })
    with pytest.MonkeyPatch.context() as mp:
        for k in [k for k in os.environ if k.startswith(("FINSEC_", "DAGSTER_"))]:
            mp.delenv(k)
        for k, v in env.items():
            mp.setenv(k, v)
        instance = dg.DagsterInstance.get()  # creates the schema before several processes race to
        instance.get_runs(limit=1)
        workers = Workers(env, root)
        try:
            workers.default = workers.start("dagster", "cpu")
            workers.gpu = workers.start("gpu", "gpu")
            yield {"env": env, "instance": instance, "workers": workers, "root": root, "postgres": postgres_url}
        finally:
            workers.stop_all()
            instance.dispose()


def _materialization_metadata(instance, run_id: str) -> dict[str, dict]:
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    return {r.dagster_event.asset_key.path[-1]: {k: v.value for k, v in r.dagster_event.materialization.metadata.items()}
            for r in records}


def _celery_worker_by_step(instance, run_id: str) -> dict[str, str]:
    """dagster-celery's own record: the engine event each worker writes when it starts a step."""
    found = {}
    for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        md = r.dagster_event.engine_event_data.metadata if r.dagster_event.engine_event_data else {}
        if "Celery worker" in md:
            found[r.step_key] = md["Celery worker"].value
    return found


def test_gpu_asset_runs_on_the_gpu_worker_and_the_rest_on_the_default_one(celery_stack):
    from .executor_jobs import routed_job

    instance, workers = celery_stack["instance"], celery_stack["workers"]
    result = dg.execute_job(dg.reconstructable(routed_job), instance=instance)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert (celery_stack["postgres"] is None) or type(instance.run_storage).__name__ == "PostgresRunStorage"

    metadata = _materialization_metadata(instance, result.run_id)
    assert metadata["plain_table"]["celery_worker"] == workers.default
    assert metadata["plain_table"]["celery_queue"] == "dagster"
    assert metadata["gpu_table"]["celery_worker"] == workers.gpu
    assert metadata["gpu_table"]["celery_queue"] == "gpu"
    assert metadata["gpu_table"]["dagster/row_count"] == 2  # it read plain_table's Parquet, written by the other worker
    assert _celery_worker_by_step(instance, result.run_id) == {"plain_table": workers.default, "gpu_table": workers.gpu}
    messages = [r.message for r in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)]
    assert 'Submitting celery task for step "gpu_table" to queue "gpu".' in messages
    assert 'Submitting celery task for step "plain_table" to queue "dagster".' in messages


def _run_and_kill(celery_stack, kill) -> tuple[dg.DagsterRun, float]:
    """Start the "killed" job in a child process, call ``kill(pid_of_step_process)`` once the slow GPU step is
    running, and return the finished run and how long after the kill it ended. A hung run fails the test."""
    instance, env = celery_stack["instance"], celery_stack["env"]
    started_dir = Path(env["FINSEC_TEST_STARTED_DIR"])
    before = set(started_dir.glob("*.started"))
    tag = f"kill-{time.time_ns()}"
    run = subprocess.Popen([sys.executable, "-m", "finsec_assets_tests.deploy.executor_jobs", tag], cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 90
        while not (new := set(started_dir.glob("*.started")) - before):
            assert run.poll() is None, run.stdout.read()[-3000:]
            assert time.time() < deadline, "slow_gpu_table never started on the gpu worker"
            time.sleep(0.5)
        time.sleep(0.5)  # the pid is written just after the file appears
        kill(int(new.pop().read_text()))
        killed_at = time.time()
        try:
            out, _ = run.communicate(timeout=RUN_BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run was still going {RUN_BOUND_S}s after its step's worker died: hung")
        ended_after = time.time() - killed_at
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"finsec/test": tag}))
    assert len(runs) == 1, out[-3000:]
    return runs[0], ended_after


def _assert_lost_step_failed(instance, run: dg.DagsterRun, message: str) -> None:
    assert run.status == dg.DagsterRunStatus.FAILURE
    step_failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert [r.step_key for r in step_failures] == ["slow_gpu_table"]
    assert message in step_failures[0].dagster_event.step_failure_data.error.to_string()
    assert {s.step_key: s.status.value for s in instance.get_run_step_stats(run.run_id)} == {
        "plain_table": "SUCCESS", "slow_gpu_table": "FAILURE"}


def test_a_worker_killed_mid_step_fails_the_step_and_a_retry_from_failure_finishes(celery_stack):
    """The whole GPU worker dies (SIGKILL to its process group, as an OOM kill or a lost node would)."""
    from .executor_jobs import killed_job

    instance, workers = celery_stack["instance"], celery_stack["workers"]
    failed, ended_after = _run_and_kill(celery_stack, lambda _step_pid: workers.kill(workers.gpu))
    _assert_lost_step_failed(instance, failed, "stopped answering")
    print(f"whole worker killed: run failed {ended_after:.1f}s later (lost after 8 s of silence)")

    # Retryable: a new GPU worker, "re-execute from failure", and only the lost step runs again.
    workers.gpu = workers.start("gpu", "gpu")
    retry = dg.execute_job(dg.reconstructable(killed_job), instance=instance,
                           reexecution_options=dg.ReexecutionOptions.from_failure(failed.run_id, instance))
    assert retry.success
    assert [e.step_key for e in retry.all_events if e.event_type_value == "STEP_SUCCESS"] == ["slow_gpu_table"]
    assert _celery_worker_by_step(instance, retry.run_id) == {"slow_gpu_table": workers.gpu}


def test_a_killed_pool_process_fails_the_step_not_the_executor(celery_stack):
    """Only the worker's pool process dies (the worker survives and reports WorkerLostError)."""
    instance, workers = celery_stack["instance"], celery_stack["workers"]
    failed, ended_after = _run_and_kill(celery_stack, lambda step_pid: os.kill(step_pid, signal.SIGKILL))
    _assert_lost_step_failed(instance, failed, "WorkerLostError")
    assert workers.app.control.ping(destination=[workers.gpu], timeout=2.0, limit=1)  # the worker itself lives on
    print(f"pool process killed: run failed {ended_after:.1f}s later")
