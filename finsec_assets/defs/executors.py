"""The run executor: multiprocess by default (one GPU step at a time), Celery with FINSEC_EXECUTOR=celery."""

from __future__ import annotations

import os

import dagster as dg

GPU_TAG_LIMIT = [{"key": "finsec/accelerator", "value": "gpu", "limit": 1}]


def run_executor(env: dict | None = None):
    env = os.environ if env is None else env
    kind = env.get("FINSEC_EXECUTOR", "multiprocess").strip().lower()
    if kind == "multiprocess":
        return dg.multiprocess_executor.configured({"tag_concurrency_limits": GPU_TAG_LIMIT}, name="finsec_multiprocess")
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "celery":
        from dagster_celery import celery_executor

        broker = env.get("FINSEC_CELERY_BROKER", "redis://127.0.0.1:6379/0")
        backend = env.get("FINSEC_CELERY_BACKEND", broker)
        return celery_executor.configured({"broker": broker, "backend": backend}, name="finsec_celery")
    raise ValueError(f"FINSEC_EXECUTOR={kind!r}: use multiprocess (default), in_process or celery")
