"""*_dataset -> ner_model, qa_model, relation_model, classification_model, summarization_model -> understanding_metrics.

Each model asset is a GPU step (pool "gpu", the shared GPU op_tags). It uploads its dataset table to the
object store (content-addressed Parquet) and launches ``python -m finsec_assets.ml.understanding.train``
through Dagster Pipes; the entry point trains the four variants (baseline, fine_tuned, fine_tuned_domain,
tuned), scores them on the test companies and publishes the best-on-validation model to
``checkpoints/<task>_model/`` itself, so the same command runs under PipesK8sClient or PipesECSClient.
The asset adds the pictures the entry point stored next to the checkpoint. ``understanding_metrics`` reads
the published manifests into one table (task, variant, split, metric, value).
"""

import base64
import hashlib
import json
import os

import dagster as dg
import pandas as pd
from pydantic import Field

from ...ml.training import FAILURE_PREFIX, SUMMARY_KEY, deep_merge, launch_command
from ...ml.understanding import train as understanding_train
from ...storage.tables import content_hash, dataframe_to_arrow, table_to_parquet_bytes
from ..common import GPU_OP_TAGS, GPU_POOL, FinsecResource, table_output

GROUP = "understanding"
TRAINING_CODE_VERSION = understanding_train.code_version()
METRIC_COLUMNS = ["task", "variant", "split", "metric", "value"]


class UnderstandingModelConfig(dg.Config):
    """Demo-size defaults (see TASK_DEFAULTS in finsec_assets/ml/understanding/train.py); scale up on a GPU."""

    hpo_trials: int = Field(2, ge=0, description="finished Optuna trials the study should hold (a rerun resumes it)")
    hpo_max_epochs: int = Field(0, ge=0, description="upper bound of the epochs the study searches; 0 = the task's default")
    epochs: int = Field(0, ge=0, description="epochs of the fine_tuned and fine_tuned_domain variants; 0 = the task's default")
    max_train_examples: int = Field(-1, description="-1 = the task's demo default; 0 = every training row")
    max_test_examples: int = Field(-1, description="-1 = the task's demo default; 0 = every test row")
    base: str = Field("", description="'' = bundled all-MiniLM-L6-v2; or an encoder path / URI")
    domain_base: str = Field("", description="'' = pretrained_checkpoint's latest version; 'none' skips fine_tuned_domain")
    study_storage: str = Field("", description="'' = SQLite next to the checkpoints; or an Optuna RDB URL (postgresql://...)")
    deepspeed: str = Field("auto", description="auto (on CUDA when deepspeed imports) | off | zero2 | zero3_offload | JSON path")
    precision: str = Field("auto", description="auto (bf16 on a GPU that has it, else fp32) | fp32 | bf16 | fp16")
    extra_settings: str = Field("{}", description="JSON merged into the entry point's settings (any UnderstandingConfig field)")


class SummarizationModelConfig(UnderstandingModelConfig):
    seq2seq_base: str = Field("", description="'' = warm-start an encoder-decoder from the encoder; or a local seq2seq "
                                              "checkpoint (e.g. a T5 directory) to fine-tune instead")


def _dataset_uri(finsec: FinsecResource, task: str, table: pd.DataFrame) -> tuple[str, str]:
    if table is None or table.empty:
        raise dg.Failure(f"{task}_model: {task}_dataset is empty; materialize it (and xbrl_facts) first")
    data = table_to_parquet_bytes(dataframe_to_arrow(table))
    digest = hashlib.sha256(data).hexdigest()[:16]
    return finsec.object_store().put_bytes(f"understanding_datasets/{task}/{digest}.parquet", data), content_hash(table)


def _settings(finsec: FinsecResource, task: str, dataset_uri: str, data_version: str, config: UnderstandingModelConfig) -> dict:
    store = finsec.object_store()
    settings = {
        "task": task, "dataset_uri": dataset_uri,
        "checkpoint_root": store.uri(f"checkpoints/{understanding_train.MODEL_ASSETS[task]}"),
        "work_dir": str(finsec.home_path / "work"),
        "base": config.base,
        "domain_base": config.domain_base or store.uri(f"checkpoints/{understanding_train.DOMAIN_ASSET}"),
        "deepspeed": config.deepspeed, "precision": config.precision,
        "training": {"epochs": config.epochs} if config.epochs else {},
        "hpo": {"trials": config.hpo_trials, "storage": config.study_storage,
                **({"max_epochs": config.hpo_max_epochs} if config.hpo_max_epochs else {})},
        "data_versions": {f"{understanding_train.ADAPTERS[task].dataset}_dataset": data_version},
    }
    if config.max_train_examples >= 0:
        settings["max_train_examples"] = config.max_train_examples
    if config.max_test_examples >= 0:
        settings["max_test_examples"] = config.max_test_examples
    if isinstance(config, SummarizationModelConfig) and config.seq2seq_base:
        settings["seq2seq_base"] = config.seq2seq_base
    try:
        extra = json.loads(config.extra_settings or "{}")
    except json.JSONDecodeError as exc:
        raise dg.Failure(f"extra_settings is not JSON: {exc}") from exc
    return deep_merge(settings, extra)


def _reported_failure(context) -> str | None:
    for record in reversed(context.instance.all_logs(context.run_id)):
        if record.dagster_event is None and FAILURE_PREFIX in (record.user_message or ""):
            return record.user_message.split(FAILURE_PREFIX, 1)[1]
    return None


def _picture(finsec: FinsecResource, checkpoint_uri: str, name: str, title: str) -> dg.MetadataValue | None:
    store = finsec.object_store()
    key = f"{checkpoint_uri}/{name}"
    if not store.exists(key):
        return None
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(store.get_bytes(key)).decode()})")


def _unpack_summary(metadata: dict) -> dict:
    """The entry point reports one JSON summary (SUMMARY_KEY); shape its entries into Dagster metadata."""
    summary = metadata.pop(SUMMARY_KEY, None)
    summary = getattr(summary, "value", summary) or {}
    kinds = {"path": dg.MetadataValue.path, "url": dg.MetadataValue.url, "md": dg.MetadataValue.md}
    for key, value in summary.items():
        if isinstance(value, dict) and set(value) == {"raw_value", "type"} and value["type"] in kinds:
            metadata[key] = kinds[value["type"]](value["raw_value"])
        elif isinstance(value, (dict, list)):
            metadata[key] = dg.MetadataValue.json(value)
        else:
            metadata[key] = value
    return metadata


def _train(context, task: str, table: pd.DataFrame, config: UnderstandingModelConfig, finsec: FinsecResource,
           client: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    dataset_uri, data_version = _dataset_uri(finsec, task, table)
    settings = _settings(finsec, task, dataset_uri, data_version, config)
    command = launch_command(understanding_train.ENTRY_MODULE, 1)
    context.log.info(f"launching {' '.join(command)}")
    env = {"FINSEC_HOME": str(finsec.home_path), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
           "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    try:
        result = client.run(command=command, context=context, extras={"config": settings}, env=env).get_materialize_result()
    except Exception as exc:  # non-zero exit: say why, if the process told us
        reason = _reported_failure(context)
        if reason is None:
            raise
        raise dg.Failure(f"{understanding_train.ENTRY_MODULE} ({task}): {reason}") from exc
    metadata = _unpack_summary(dict(result.metadata or {}))
    if "checkpoint_uri" not in metadata:
        raise dg.Failure(f"{understanding_train.ENTRY_MODULE} ({task}) finished without reporting a checkpoint_uri")
    uri = metadata["checkpoint_uri"].value
    for key, name in understanding_train.PICTURES.items():
        picture = _picture(finsec, uri, name, key.replace("_", " "))
        if picture is not None:
            metadata[key] = picture
    return dg.MaterializeResult(metadata=metadata, data_version=result.data_version)


_MODEL_ASSET = dict(group_name=GROUP, pool=GPU_POOL, op_tags=GPU_OP_TAGS, kinds={"pytorch", "deepspeed"},
                    code_version=TRAINING_CODE_VERSION, deps=[understanding_train.DOMAIN_ASSET])


@dg.asset(**_MODEL_ASSET)
def ner_model(context: dg.AssetExecutionContext, config: UnderstandingModelConfig, finsec: FinsecResource,
              pipes_subprocess_client: dg.PipesSubprocessClient, ner_dataset: pd.DataFrame):
    """Token classifier for us-gaap concepts (FiNER-style IOB2), judged by seqeval entity F1 on unseen
    companies; baseline CRF. Loads with AutoModelForTokenClassification."""
    return _train(context, "ner", ner_dataset, config, finsec, pipes_subprocess_client)


@dg.asset(**_MODEL_ASSET)
def qa_model(context: dg.AssetExecutionContext, config: UnderstandingModelConfig, finsec: FinsecResource,
             pipes_subprocess_client: dg.PipesSubprocessClient, qa_dataset: pd.DataFrame):
    """Extractive QA with unanswerable questions (SQuAD 2.0 EM/F1); baseline lexical sliding window.
    Loads with AutoModelForQuestionAnswering."""
    return _train(context, "qa", qa_dataset, config, finsec, pipes_subprocess_client)


@dg.asset(**_MODEL_ASSET)
def relation_model(context: dg.AssetExecutionContext, config: UnderstandingModelConfig, finsec: FinsecResource,
                   pipes_subprocess_client: dg.PipesSubprocessClient, relation_dataset: pd.DataFrame):
    """Fact-period / fact-member relation classifier on entity-marked sentences (macro-F1, accuracy);
    baselines nearest-mention rule and majority. Loads with AutoModelForSequenceClassification."""
    return _train(context, "relation", relation_dataset, config, finsec, pipes_subprocess_client)


@dg.asset(**_MODEL_ASSET)
def classification_model(context: dg.AssetExecutionContext, config: UnderstandingModelConfig, finsec: FinsecResource,
                         pipes_subprocess_client: dg.PipesSubprocessClient, classification_dataset: pd.DataFrame):
    """Paragraph -> section item (baseline TF-IDF + logistic regression), plus the filing-level industry
    MLP on pooled embeddings. Loads with AutoModelForSequenceClassification."""
    return _train(context, "classification", classification_dataset, config, finsec, pipes_subprocess_client)


@dg.asset(**_MODEL_ASSET)
def summarization_model(context: dg.AssetExecutionContext, config: SummarizationModelConfig, finsec: FinsecResource,
                        pipes_subprocess_client: dg.PipesSubprocessClient, summarization_dataset: pd.DataFrame):
    """Risk-factor body -> its heading: an encoder-decoder warm-started from the encoder (or a named seq2seq
    checkpoint), ROUGE-1/2/L; baselines lead sentence and Jaccard. Loads with AutoModelForSeq2SeqLM."""
    return _train(context, "summarization", summarization_dataset, config, finsec, pipes_subprocess_client)


MODEL_ASSETS = [ner_model, qa_model, relation_model, classification_model, summarization_model]


@dg.asset(group_name=GROUP, deps=MODEL_ASSETS, kinds={"duckdb"}, code_version=TRAINING_CODE_VERSION)
def understanding_metrics(context: dg.AssetExecutionContext, finsec: FinsecResource) -> dg.Output:
    """Every task x variant figure of the latest published models: test split (companies never trained on)
    and validation split (what model selection and the study saw)."""
    from ...ml.training import CheckpointStore

    rows, versions = [], {}
    for task, asset in understanding_train.MODEL_ASSETS.items():
        checkpoints = CheckpointStore(finsec.object_store().uri(f"checkpoints/{asset}"))
        version = checkpoints.latest()
        if version is None:
            raise dg.Failure(f"understanding_metrics: {asset} has no published checkpoint; materialize it first")
        manifest = checkpoints.read_manifest(version)
        rows += manifest["metrics"]
        versions[asset] = version
    df = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    return table_output(df, {"test_metrics": dg.MetadataValue.md(understanding_train.metrics_markdown(rows)),
                             "checkpoint_versions": versions})
