"""Which executor FINSEC_EXECUTOR picks, and the default's promise: one GPU step at a time."""

from __future__ import annotations

import dagster as dg
import pytest

from finsec_assets.defs.executors import GPU_TAG_LIMIT, celery_executor_config, run_executor

from .conftest import DOCKER


def _config(executor_def) -> dict:
    return executor_def.config_schema.resolve_config({}).value["config"]


def test_default_is_multiprocess_with_one_gpu_step_at_a_time():
    executor = run_executor({})
    assert executor.name == "finsec_multiprocess"
    assert _config(executor)["tag_concurrency_limits"] == GPU_TAG_LIMIT


def test_celery_settings_come_from_env_or_the_workers_file():
    from_env = _config(run_executor({"FINSEC_EXECUTOR": "celery", "FINSEC_CELERY_BROKER": "redis://r:6379/3"}))
    assert from_env["broker"] == from_env["backend"] == "redis://r:6379/3"
    assert from_env["config_source"]["task_track_started"] is True
    assert from_env["worker_lost_seconds"] == 60
    from_file = celery_executor_config({"FINSEC_CELERY_CONFIG": str(DOCKER / "celery.yaml"),
                                        "FINSEC_CELERY_BROKER": "redis://b:6379/0", "FINSEC_CELERY_BACKEND": "redis://b:6379/1",
                                        "FINSEC_CELERY_WORKER_LOST_SECONDS": "15"})
    assert (from_file["broker"], from_file["backend"], from_file["worker_lost_seconds"]) == (
        "redis://b:6379/0", "redis://b:6379/1", 15)


@pytest.mark.parametrize(("env", "message"), [
    ({"FINSEC_EXECUTOR": "spark"}, "FINSEC_EXECUTOR='spark' is not an executor"),
    ({"FINSEC_EXECUTOR": "celery", "FINSEC_CELERY_WORKER_LOST_SECONDS": "soon"}, "FINSEC_CELERY_WORKER_LOST_SECONDS='soon'"),
    ({"FINSEC_EXECUTOR": "celery", "FINSEC_CELERY_CONFIG": "/nonexistent/celery.yaml"}, "/nonexistent/celery.yaml"),
])
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        run_executor(env)


def test_bad_celery_file_is_named(tmp_path):
    bad = tmp_path / "celery.yaml"
    bad.write_text("broker: redis://x\n")
    with pytest.raises(ValueError, match="expected an 'execution: config:' mapping"):
        celery_executor_config({"FINSEC_CELERY_CONFIG": str(bad)})


def test_multiprocess_runs_gpu_steps_one_at_a_time(finsec_env):
    """Two independent GPU steps, each 3 s: the default executor runs them in turn, never together."""
    from .executor_jobs import two_gpu_steps_job

    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(two_gpu_steps_job), instance=instance)
        assert result.success
        spans = sorted((e.materialization.metadata["start"].value, e.materialization.metadata["end"].value)
                       for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION")
        pids = {e.pid for e in result.all_events if e.event_type_value == "STEP_START"}
    assert len(spans) == 2 and len(pids) == 2  # two step processes, as multiprocess does
    (_, first_end), (second_start, _) = spans
    assert second_start >= first_end, f"GPU steps overlapped: {spans}"
