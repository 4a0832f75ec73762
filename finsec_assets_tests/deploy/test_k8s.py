"""FINSEC_EXECUTOR=k8s: the GPU request in `dagster-k8s/config` reaches the step's pod spec, built by dagster-k8s itself.

No cluster: dagster-k8s's K8sStepHandler builds the Job exactly as it would for a cluster; only the final API call is
received by a recorder instead of a kube-apiserver.
"""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.execution.api import create_execution_plan
from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import create_context_free_log_manager
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.step_delegating.step_handler.base import StepHandlerContext
from dagster._grpc.types import ExecuteStepArgs
from dagster_k8s.client import DagsterKubernetesClient

from finsec_assets.defs.common import GPU_OP_TAGS, GPU_POOL
from finsec_assets.defs.executors import run_executor

from .conftest import REPO

IMAGE = "registry.example.com/finsec-assets-gpu:test"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: test, user: {token: not-a-real-token}}]
contexts: [{name: test, context: {cluster: test, user: test, namespace: finsec}}]
current-context: test
"""


@dg.asset
def cpu_table() -> int:
    return 1


@dg.asset(op_tags=GPU_OP_TAGS, pool=GPU_POOL)
def gpu_table(cpu_table: int) -> int:
    return cpu_table


def k8s_job() -> dg.JobDefinition:
    return dg.Definitions(assets=[cpu_table, gpu_table], jobs=[dg.define_asset_job("k8s_job")]).resolve_job_def("k8s_job")


class RecordingBatchApi:
    """Receives the Job that dagster-k8s would POST to the cluster."""

    def __init__(self):
        self.jobs = []

    def create_namespaced_job(self, body, namespace, **_):
        self.jobs.append((namespace, body))


@pytest.fixture
def k8s_env(tmp_path, monkeypatch):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    env = {"FINSEC_EXECUTOR": "k8s", "FINSEC_K8S_NAMESPACE": "finsec", "FINSEC_K8S_IMAGE": IMAGE,
           "FINSEC_K8S_KUBECONFIG": str(kubeconfig), "FINSEC_HOME": "/data/finsec",
           "FINSEC_OBJECT_STORE_URL": "s3://finsec/prod", "AWS_ENDPOINT_URL": "http://minio:9000"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    launcher = {"module": "dagster_k8s", "class": "K8sRunLauncher",
                "config": {"service_account_name": "dagster", "instance_config_map": "dagster-instance",
                           "dagster_home": "/opt/dagster/dagster_home", "job_image": IMAGE, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}}
    with dg.instance_for_test(overrides={"run_launcher": launcher}) as instance:
        yield env, instance


def launched_pods(recon_job, step_keys: list[str], env: dict, instance) -> dict:
    """Run dagster-k8s's step handler, as the project's k8s executor configures it, for each step; return pod specs."""
    executor_def = run_executor(env)
    assert executor_def.name == "finsec_k8s"
    config = executor_def.config_schema.resolve_config({}).value["config"]
    executor = executor_def.executor_creation_fn(
        dg.InitExecutorContext(job=recon_job, executor_def=executor_def, executor_config=config, instance=instance))
    recorder = RecordingBatchApi()
    handler = executor._step_handler  # noqa: SLF001 - dagster-k8s's own K8sStepHandler
    handler._api_client = DagsterKubernetesClient.production_client(batch_api_override=recorder)  # noqa: SLF001

    job_def = recon_job.get_definition()
    plan = create_execution_plan(recon_job)
    run = instance.create_run_for_job(job_def=job_def, execution_plan=plan, job_code_origin=recon_job.get_python_origin())
    plan_context = PlanOrchestrationContext(
        plan_data=PlanData(job=recon_job, dagster_run=run, instance=instance, execution_plan=plan,
                           raise_on_error=True, retry_mode=RetryMode.DISABLED),
        log_manager=create_context_free_log_manager(instance, run), executor=executor, output_capture=None)
    pods = {}
    for key in step_keys:
        context = StepHandlerContext(instance=instance, plan_context=plan_context, steps=[plan.get_step_by_key(key)],
                                     execute_step_args=ExecuteStepArgs(recon_job.get_python_origin(), run.run_id, [key]))
        list(handler.launch_step(context))
        namespace, body = recorder.jobs[-1]
        pods[key] = (namespace, body.spec.template.spec)
    return pods


def test_gpu_step_pod_requests_a_gpu_and_the_cpu_step_pod_does_not(k8s_env):
    env, instance = k8s_env
    pods = launched_pods(dg.reconstructable(k8s_job), ["cpu_table", "gpu_table"], env, instance)

    namespace, gpu_pod = pods["gpu_table"]
    container = gpu_pod.containers[0]
    assert namespace == "finsec"
    assert container.image == IMAGE
    assert container.resources.limits == {"nvidia.com/gpu": "1"}
    assert container.resources.requests == {"nvidia.com/gpu": "1"}
    assert gpu_pod.node_selector == {"nvidia.com/gpu.present": "true"}
    assert container.args[:3] == ["dagster", "api", "execute_step"]
    passed = {e.name for e in container.env}
    assert {"FINSEC_HOME", "FINSEC_OBJECT_STORE_URL", "AWS_ENDPOINT_URL"} <= passed

    _, cpu_pod = pods["cpu_table"]
    assert not (cpu_pod.containers[0].resources and cpu_pod.containers[0].resources.limits)
    assert not cpu_pod.node_selector


def test_every_gpu_asset_in_the_project_gets_a_gpu_pod(k8s_env):
    """The project's own jobs, loaded the way a code server loads them."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    env, instance = k8s_env
    repo = ReconstructableRepository.for_module("finsec_assets.definitions", "defs", working_directory=str(REPO))
    seen = []
    for job_name in ("quarter_refresh", "corpus_refresh"):
        assert job_name in repo.get_definition().job_names, f"job {job_name!r} is gone from finsec_assets.definitions"
        recon = repo.get_reconstructable_job(job_name)
        gpu_steps = [s.key for s in create_execution_plan(recon).steps if s.tags.get("finsec/accelerator") == "gpu"]
        for key, (_, pod) in launched_pods(recon, gpu_steps, env, instance).items():
            assert pod.containers[0].resources.limits.get("nvidia.com/gpu") == "1", key
            assert pod.node_selector == {"nvidia.com/gpu.present": "true"}, key
            seen.append(key)
    # The project has GPU assets (pooled_embeddings, the checkpoints): finding none means their tags were lost.
    assert seen, "no GPU-tagged step in quarter_refresh or corpus_refresh: GPU_OP_TAGS no longer reach the plan"
