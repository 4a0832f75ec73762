"""Tiny assets for the executor tests: a plain one and GPU-tagged ones that record where and when they ran.

Workers import this module by name (the job's code pointer), so it lives beside the tests, not in the package.
Jobs are built on call: the executor is read from FINSEC_EXECUTOR at that moment, in the run and in each worker.
"""

import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from finsec_assets.defs.common import GPU_OP_TAGS, GPU_POOL, FinsecResource, LakeIOManager
from finsec_assets.defs.executors import run_executor


def _where() -> dict:
    from celery import current_task

    request = current_task.request if current_task else None
    delivery = (request.delivery_info or {}) if request else {}
    # On a Redis broker the delivered routing key is the name of the queue the task came from.
    return {"celery_worker": request.hostname if request else "", "celery_queue": delivery.get("routing_key") or "",
            "pid": os.getpid()}


@dg.asset
def plain_table() -> dg.Output:
    where = _where()
    return dg.Output(pd.DataFrame({"cik": [104169, 320193], "value": [1.0, 2.0]}), metadata=where)


@dg.asset(op_tags=GPU_OP_TAGS, pool=GPU_POOL)
def gpu_table(plain_table: pd.DataFrame) -> dg.Output:
    where = _where()
    return dg.Output(plain_table.assign(value=plain_table["value"] * 2), metadata=where)


@dg.asset(op_tags=GPU_OP_TAGS, pool=GPU_POOL)
def slow_gpu_table(context: dg.AssetExecutionContext, plain_table: pd.DataFrame) -> dg.Output:
    """First attempt: says it started (and where), then works far longer than the test waits; a retry finishes at once."""
    run = context.run
    started = Path(os.environ["FINSEC_TEST_STARTED_DIR"]) / f"{run.root_run_id or run.run_id}.started"
    first_attempt = not started.exists()
    started.write_text(str(os.getpid()))
    if first_attempt:
        time.sleep(600)
    return dg.Output(plain_table, metadata=_where())


def _timed_gpu_step() -> dg.Output:
    start = time.time()
    time.sleep(3)
    return dg.Output(pd.DataFrame({"pid": [os.getpid()]}), metadata={"start": start, "end": time.time()})


@dg.asset(op_tags=GPU_OP_TAGS, pool=GPU_POOL)
def gpu_step_a() -> dg.Output:
    return _timed_gpu_step()


@dg.asset(op_tags=GPU_OP_TAGS, pool=GPU_POOL)
def gpu_step_b() -> dg.Output:
    return _timed_gpu_step()


def _defs() -> dg.Definitions:
    finsec = FinsecResource()
    return dg.Definitions(
        assets=[plain_table, gpu_table, slow_gpu_table, gpu_step_a, gpu_step_b],
        jobs=[dg.define_asset_job("routed", selection=["plain_table", "gpu_table"]),
              dg.define_asset_job("killed", selection=["plain_table", "slow_gpu_table"]),
              dg.define_asset_job("two_gpu_steps", selection=["gpu_step_a", "gpu_step_b"])],
        resources={"finsec": finsec, "io_manager": LakeIOManager(finsec=finsec)},
        executor=run_executor(),
    )


def routed_job() -> dg.JobDefinition:
    return _defs().resolve_job_def("routed")


def killed_job() -> dg.JobDefinition:
    return _defs().resolve_job_def("killed")


def two_gpu_steps_job() -> dg.JobDefinition:
    return _defs().resolve_job_def("two_gpu_steps")


if __name__ == "__main__":  # the test runs the "killed" job in a child process it can bound and kill
    import sys

    from finsec_assets_tests.deploy.executor_jobs import killed_job as importable_killed_job  # a module code pointer

    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(importable_killed_job), instance=instance,
                                tags={"finsec/test": sys.argv[1]})
        print(result.run_id, result.success, flush=True)
