"""How a run executes its steps, chosen by FINSEC_EXECUTOR.

- ``multiprocess`` (default): one process per step, at most one ``finsec/accelerator=gpu`` step at a time.
- ``in_process``: everything in the run worker (debugging).
- ``celery``: dagster-celery; steps tagged ``dagster-celery/queue=gpu`` go to GPU workers, the rest to
  ``dagster``. Unlike the stock executor, a step whose worker dies mid-step fails (or is retried under its
  RetryPolicy) instead of leaving the run waiting forever.
- ``k8s``: dagster-k8s's ``k8s_job_executor``; each step is a Kubernetes Job, GPU steps request
  ``nvidia.com/gpu`` through their ``dagster-k8s/config`` op tag.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
import weakref
from collections.abc import Mapping

import dagster as dg
from celery.exceptions import TaskRevokedError
from celery.states import READY_STATES, STARTED
from dagster._core.execution.retries import RetryMode
from dagster._serdes import serialize_value
from dagster._utils.error import SerializableErrorInfo, serializable_error_info_from_exc_info
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, _submit_task

EXECUTORS = ("multiprocess", "in_process", "celery", "k8s")
GPU_TAG_LIMIT = [{"key": "finsec/accelerator", "value": "gpu", "limit": 1}]

DEFAULT_CELERY_BROKER = "redis://127.0.0.1:6379/0"
# The settings every worker must share with the run (docker/celery.yaml repeats them; a test keeps the two equal).
# task_track_started: a running task records its worker's name, which is how a dead worker is noticed.
# worker_prefetch_multiplier 1: a GPU worker never holds a second step it cannot start.
CELERY_CONFIG_SOURCE = {
    "task_track_started": True,
    "worker_prefetch_multiplier": 1,
    "task_default_queue": "dagster",
    "task_default_priority": 5,
    "broker_transport_options": {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
}
# A worker that answers no ping for this long is declared lost, and so is the step it was running.
DEFAULT_WORKER_LOST_SECONDS = 60


def run_executor(env: Mapping[str, str] | None = None) -> dg.ExecutorDefinition:
    env = os.environ if env is None else env
    from .common import parse_step_workers

    parse_step_workers(env)  # a bad FINSEC_STEP_WORKERS fails when the definitions load, not inside a step
    kind = env.get("FINSEC_EXECUTOR", "multiprocess").strip().lower() or "multiprocess"
    if kind == "multiprocess":
        return dg.multiprocess_executor.configured({"tag_concurrency_limits": GPU_TAG_LIMIT}, name="finsec_multiprocess")
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "celery":
        return finsec_celery_executor.configured(celery_executor_config(env), name="finsec_celery")
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(k8s_executor_config(env), name="finsec_k8s")
    raise ValueError(f"FINSEC_EXECUTOR={kind!r} is not an executor: use one of {', '.join(EXECUTORS)}")


# --- Celery -------------------------------------------------------------------------------------------


def celery_executor_config(env: Mapping[str, str]) -> dict:
    """The executor's Celery settings: FINSEC_CELERY_CONFIG (the workers' -y file) if set, else FINSEC_CELERY_* vars.

    Reading the workers' own file is what keeps the run and the workers on one broker with one configuration.
    """
    lost = _positive_int(env, "FINSEC_CELERY_WORKER_LOST_SECONDS", DEFAULT_WORKER_LOST_SECONDS)
    path = env.get("FINSEC_CELERY_CONFIG")
    if path:
        config = _celery_yaml(path, env)
    else:
        broker = env.get("FINSEC_CELERY_BROKER") or DEFAULT_CELERY_BROKER
        config = {"broker": broker, "backend": env.get("FINSEC_CELERY_BACKEND") or broker,
                  "config_source": dict(CELERY_CONFIG_SOURCE)}
    return {**config, "worker_lost_seconds": lost}


def _celery_yaml(path: str, env: Mapping[str, str]) -> dict:
    import yaml

    try:
        with open(path, encoding="utf8") as f:
            doc = yaml.safe_load(f) or {}
    except OSError as e:
        raise ValueError(f"FINSEC_CELERY_CONFIG={path!r}: cannot read it ({e.strerror})") from e
    config = (doc.get("execution") or {}).get("config") if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        raise ValueError(f"FINSEC_CELERY_CONFIG={path!r}: expected an 'execution: config:' mapping (dagster-celery's -y format)")
    resolved = {}
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"env"}:  # dagster's StringSource {env: VAR}
            if not env.get(value["env"]):
                raise ValueError(f"FINSEC_CELERY_CONFIG={path!r}: {key} reads ${value['env']}, which is not set")
            value = env[value["env"]]
        resolved[key] = value
    return resolved


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{name}={raw!r}: expected a positive number of seconds")
    return value


@dg.executor(name="finsec_celery",
             config_schema={**CELERY_CONFIG, "worker_lost_seconds": dg.Field(
                 int, default_value=DEFAULT_WORKER_LOST_SECONDS,
                 description="Fail (or retry) a step whose Celery worker has answered no ping for this many seconds.")},
             requirements=dg.multiple_process_executor_requirements())
def finsec_celery_executor(init_context: dg.InitExecutorContext):
    """dagster-celery's executor, plus a watch on the worker running each step."""
    config = init_context.executor_config
    return WatchedCeleryExecutor(
        broker=config.get("broker"), backend=config.get("backend"), include=config.get("include"),
        config_source=config.get("config_source"), retries=RetryMode.from_config(config["retries"]),
        worker_lost_seconds=config["worker_lost_seconds"],
    )


class WatchedCeleryExecutor(CeleryExecutor):
    """Why: dagster-celery 0.29 polls only ``AsyncResult.ready()``. When a whole worker dies (OOM kill, lost node)
    its task stays STARTED forever and the run hangs with the step "in progress". Each submitted step's result
    is wrapped so that a dead worker turns into a step failure, or a retry under the step's RetryPolicy; run
    failure then releases the run's pool slots, and "re-execute from failure" reruns exactly the lost steps.
    """

    def __init__(self, retries, broker=None, backend=None, include=None, config_source=None,
                 worker_lost_seconds: int = DEFAULT_WORKER_LOST_SECONDS):
        super().__init__(retries=retries, broker=broker, backend=backend, include=include, config_source=config_source)
        self.worker_lost_seconds = worker_lost_seconds

    def execute(self, plan_context, execution_plan):
        return core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=_submit_watched_task)


def _submit_watched_task(app, plan_context, step, queue, priority, known_state):
    with warnings.catch_warnings():  # dagster-celery re-declares its task on every submit; Celery 5.7 warns each time
        warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")
        result = _submit_task(app, plan_context, step, queue, priority, known_state)
    return WatchedResult(result, WorkerWatch.for_app(app, plan_context.executor.worker_lost_seconds),
                         plan_context, step, queue, known_state)


class WorkerWatch:
    """Which Celery workers still answer pings; one per run's Celery app, shared by its steps."""

    _by_app: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def __init__(self, app, lost_after_seconds: int, ping_every_seconds: float | None = None):
        self.app = app
        self.lost_after_seconds = lost_after_seconds
        self.ping_every_seconds = ping_every_seconds or max(1.0, min(10.0, lost_after_seconds / 4))
        self._last_answer: dict[str, float] = {}
        self._last_ping: dict[str, float] = {}

    @classmethod
    def for_app(cls, app, lost_after_seconds: int) -> "WorkerWatch":
        watch = cls._by_app.get(app)
        if watch is None:
            watch = cls._by_app[app] = cls(app, lost_after_seconds)
        return watch

    def silent_for(self, worker: str) -> float:
        """Seconds since ``worker`` last answered (0 while it answers); pings at most every ping_every_seconds."""
        now = time.monotonic()
        self._last_answer.setdefault(worker, now)  # first sight: the worker just reported the task as started
        if now - self._last_ping.get(worker, 0.0) >= self.ping_every_seconds:
            self._last_ping[worker] = now
            try:
                replies = self.app.control.ping(destination=[worker], timeout=1.0, limit=1)
            except Exception:  # the broker itself is unreachable: that is not evidence against the worker
                replies = None
                self._last_answer[worker] = now
            if replies and any(worker in reply for reply in replies):
                self._last_answer[worker] = now
        return now - self._last_answer[worker]


class WatchedResult:
    """A Celery AsyncResult, as dagster-celery's loop uses it, that also reports its worker's death."""

    def __init__(self, result, watch: WorkerWatch, plan_context, step, queue: str, known_state):
        self._result = result
        self._watch = watch
        self._plan_context = plan_context
        self._step = step
        self._queue = queue
        self._known_state = known_state
        self._lost_message: str | None = None
        self._started_at: float | None = None

    def ready(self) -> bool:
        if self._lost_message is not None:
            return True
        state = self._result.state
        if state in READY_STATES:
            return True
        if state != STARTED:
            return False  # still queued: waiting for a worker on the queue is not a failure
        info = self._result.info
        worker = info.get("hostname") if isinstance(info, dict) else None
        if not worker:
            return False
        if self._started_at is None:
            self._started_at = time.monotonic()
        # Silence counts from this step's start at the latest: a worker that died and came back under the same
        # name (a restarted container) is judged afresh for the step it now runs.
        silent = min(self._watch.silent_for(worker), time.monotonic() - self._started_at)
        if silent >= self._watch.lost_after_seconds:
            self._lost_message = (
                f'Celery worker {worker} (pid {info.get("pid")}, queue "{self._queue}") stopped answering '
                f'{silent:.0f}s ago while running step "{self._step.key}": the worker was lost mid-step.'
            )
            return True
        return False

    def get(self):
        if self._lost_message is not None:
            error = SerializableErrorInfo(message=self._lost_message, stack=[], cls_name="WorkerLost")
        else:
            try:
                return self._result.get()
            except TaskRevokedError:
                raise  # the loop reports revoked tasks itself
            except Exception:
                # WorkerLostError when the worker's pool process died, or any error outside the step's own code
                error = serializable_error_info_from_exc_info(sys.exc_info())
        step_context = self._plan_context.for_step(self._step)
        event = self._plan_context.executor.log_failure_or_retry_event_after_error(step_context, error, self._known_state)
        return [serialize_value(event)]

    def revoke(self) -> None:
        self._result.revoke(terminate=True)


# --- Kubernetes ---------------------------------------------------------------------------------------

PASSED_TO_STEP_PODS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")


def k8s_executor_config(env: Mapping[str, str]) -> dict:
    """Step Jobs in FINSEC_K8S_NAMESPACE with the run's FINSEC_*/AWS_* settings passed through by name."""
    config: dict = {
        "job_namespace": env.get("FINSEC_K8S_NAMESPACE") or "default",
        "env_vars": sorted(k for k in env if k in PASSED_TO_STEP_PODS or k.startswith(("FINSEC_", "AWS_"))),
    }
    if env.get("FINSEC_K8S_IMAGE"):
        config["job_image"] = env["FINSEC_K8S_IMAGE"]
    if env.get("FINSEC_K8S_KUBECONFIG"):  # outside the cluster (e.g. a laptop launching into it)
        config["load_incluster_config"] = False
        config["kubeconfig_file"] = env["FINSEC_K8S_KUBECONFIG"]
    return config
