"""filing_sections -> pretrained_checkpoint (MLM) and finetuned_checkpoint (causal LM), trained out of process.

Each asset queries the lake for the sections it trains on (only the corpus columns, only the
items or companies it needs), streams the batches into one Parquet file in the object store
(content-addressed), then launches ``python -m finsec_assets.ml.<entry>``
through Dagster Pipes (``torchrun`` when several GPUs are visible). The entry
point reads its settings from the Pipes extras, trains, and publishes the
checkpoint itself to ``checkpoints/<asset>/`` in the object store (a fresh
``versions/<version>/<publication>/``, then the ``LATEST`` pointer, which never moves
back to a run that started earlier), so the same command runs unchanged
under ``PipesK8sClient`` or ``PipesECSClient``, where this process cannot see
the trainer's disk. The asset only adds the loss-curve picture, read back from
next to the checkpoint.

The causal-LM asset does not read ``pretrained_checkpoint``: an MLM encoder is
not a causal-LM base. Its default base is a GPT-J-architecture model pretrained,
inside the run, on the other companies' filings.
"""

import json
import os
import tempfile
from pathlib import Path

import dagster as dg
from pydantic import Field

from ...ml import clm_finetune, mlm_pretrain
from ...ml.training import (FAILURE_PREFIX, SUMMARY_KEY, code_version, corpus_batches, deep_merge, launch_command,
                            visible_gpu_count, write_corpus_batches)
from ..common import GPU_OP_TAGS, GPU_POOL, FinsecResource
from .metadata import checkpoint_metadata, loss_curve_metadata

GROUP = "language_models"
TRAINING_CODE_VERSION = code_version()  # changes when the entry points or DeepSpeed configs change
# every quarter of filing_sections feeds the corpus; the rows are queried from the lake, not loaded as an input
ALL_QUARTERS = [dg.AssetDep("filing_sections", partition_mapping=dg.AllPartitionMapping())]
CORPUS_BATCH_ROWS = 1_000  # sections per streamed batch (a 10-K section can be 100k+ characters)


class LaunchConfig(dg.Config):
    processes: int = Field(0, description="training processes; 0 = one per visible GPU (1 on CPU)")
    launcher: str = Field("torchrun", description="multi-GPU launcher: torchrun or deepspeed")
    deepspeed: str = Field("auto", description="auto (on CUDA when deepspeed imports) | off | zero2 | zero3_offload | JSON path")
    precision: str = Field("auto", description="auto (bf16 on a GPU that has it, else fp32) | fp32 | bf16 | fp16")
    extra_settings: str = Field("{}", description="JSON merged into the entry point's settings (any field of its config)")


class PretrainedCheckpointConfig(LaunchConfig):
    """Tiny CPU defaults: about two minutes on two cores. Scale max_steps, seq_len and batch size on a GPU."""

    base: str = Field("", description="'' = bundled all-MiniLM-L6-v2 with a fresh MLM head; 'scratch'; or a model path / URI")
    items: list[str] = Field(default_factory=list, description="section items to train on; empty = every item")
    seq_len: int = 128
    max_steps: int = 40
    per_device_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    save_steps: int = 20
    eval_fraction: float = 0.1
    max_eval_blocks: int = 32


class FinetunedCheckpointConfig(LaunchConfig):
    """Tiny CPU defaults: a ~1.5M-parameter GPT-J, a few minutes on two cores."""

    ticker: str = Field("WMT", description="company to fine-tune on (resolved to a CIK through EDGAR's ticker list)")
    cik: int = Field(0, description="company CIK; overrides ticker when set")
    base: str = Field("", description="'' = GPT-J from config pretrained on the other companies; or a model path / URI")
    seq_len: int = 128
    base_steps: int = 200
    base_learning_rate: float = 2e-3
    max_steps: int = 60
    per_device_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-3
    save_steps: int = 50
    max_eval_blocks: int = 64
    generation_max_length: int = Field(400, description="JumpStart's max_length (prompt included)")


def _training_corpus(finsec: FinsecResource, asset: str, *, items=(), ciks=()) -> tuple[str, dict, int]:
    """Stream the sections a run trains on from the lake into a Parquet file in the object store
    (content-addressed); returns its URI, per-quarter content hashes and row count."""
    lake = finsec.lake()
    if not lake.has_table("filing_sections"):
        raise dg.Failure(f"{asset}: the lake has no filing_sections table; materialize some quarters of it first")
    store = finsec.object_store()
    scratch = Path(store.local_path("training_corpora")) if store.is_local else finsec.home_path / "work"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".tmp-corpus-") as tmp:
        batches = corpus_batches(lake, "filing_sections", items=items, ciks=ciks, batch_size=CORPUS_BATCH_ROWS)
        corpus = write_corpus_batches(batches, Path(tmp) / "c.parquet")  # one quarter's rows in memory at a time
        if corpus.rows == 0:
            wanted = "".join([f" for items {list(items)}" if items else "", f" for cik {list(ciks)}" if ciks else ""])
            raise dg.Failure(f"{asset}: filing_sections holds no non-empty sections{wanted}; materialize some quarters of it first")
        key = f"training_corpora/{asset}/{corpus.sha256[:16]}.parquet"
        if store.is_local:  # a rename, not a copy through memory
            dest = store.local_path(key)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(corpus.path, dest)
            uri = store.uri(key)
        else:
            uri = store.put_file(key, corpus.path)
    return uri, {"filing_sections": corpus.quarter_versions}, corpus.rows


def _launch(context, client: dg.PipesSubprocessClient, finsec: FinsecResource, entry_module: str, settings: dict,
            config: LaunchConfig, corpus_rows: int) -> dg.MaterializeResult:
    try:
        extra = json.loads(config.extra_settings or "{}")
    except json.JSONDecodeError as exc:
        raise dg.Failure(f"extra_settings is not JSON: {exc}") from exc
    settings = deep_merge(settings, extra)
    processes = config.processes or max(1, visible_gpu_count())
    command = launch_command(entry_module, processes, config.launcher)
    context.log.info(f"launching {' '.join(command)}")
    env = {"FINSEC_HOME": str(finsec.home_path), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
           "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    try:
        result = client.run(command=command, context=context, extras={"config": settings}, env=env).get_materialize_result()
    except Exception as exc:  # the client raises when the process exits non-zero; say why, if it told us
        reason = _reported_failure(context)
        if reason is None:
            raise
        raise dg.Failure(f"{entry_module}: {reason}") from exc
    reported = (result.metadata or {}).get(SUMMARY_KEY)
    if reported is None or "checkpoint_uri" not in (reported.value or {}):
        raise dg.Failure(f"{entry_module} finished without reporting its checkpoint")
    summary = reported.value
    metadata = checkpoint_metadata(summary)
    metadata["loss_curve"] = loss_curve_metadata(finsec.object_store(), summary["checkpoint_uri"])
    metadata["corpus_sections"] = dg.MetadataValue.int(corpus_rows)
    metadata["corpus_uri"] = dg.MetadataValue.path(settings["corpus_uri"])
    if not summary.get("latest_moved", True):
        context.log.warning(f"{summary['version']} was published at {summary['checkpoint_uri']}, but LATEST stays at "
                            f"{summary['latest_version']}: a run that started later published first")
    return dg.MaterializeResult(metadata=metadata, data_version=result.data_version)


def _reported_failure(context) -> str | None:
    """The reason the training process logged through Pipes before it exited."""
    for record in reversed(context.instance.all_logs(context.run_id)):
        if record.dagster_event is None and FAILURE_PREFIX in (record.user_message or ""):
            return record.user_message.split(FAILURE_PREFIX, 1)[1]
    return None


def _hyperparameters(config, **overrides) -> dict:
    return {"max_steps": config.max_steps, "per_device_batch_size": config.per_device_batch_size,
            "gradient_accumulation_steps": config.gradient_accumulation_steps, "learning_rate": config.learning_rate,
            "save_steps": config.save_steps, "precision": config.precision, **overrides}


@dg.asset(group_name=GROUP, deps=ALL_QUARTERS, pool=GPU_POOL, op_tags=GPU_OP_TAGS, kinds={"pytorch", "deepspeed"},
          code_version=TRAINING_CODE_VERSION)
def pretrained_checkpoint(context: dg.AssetExecutionContext, config: PretrainedCheckpointConfig, finsec: FinsecResource,
                          pipes_subprocess_client: dg.PipesSubprocessClient):
    """An encoder adapted to filing language by masked-LM pretraining (dynamic masking, no NSP, packed
    blocks, held-out filings), published with manifest.json; loads with AutoModel and AutoModelForMaskedLM
    and serves as pooled_embeddings' model."""
    corpus_uri, data_versions, rows = _training_corpus(finsec, "pretrained_checkpoint", items=list(config.items))
    context.log.info(f"training corpus: {rows:,} sections streamed from the lake to {corpus_uri}")
    settings = {
        "corpus_uri": corpus_uri,
        "checkpoint_root": finsec.object_store().uri("checkpoints/pretrained_checkpoint"),
        "work_dir": str(finsec.home_path / "work"),
        "base": config.base, "items": list(config.items), "seq_len": config.seq_len,
        "eval_fraction": config.eval_fraction, "max_eval_blocks": config.max_eval_blocks,
        "deepspeed": config.deepspeed, "data_versions": data_versions,
        "training": _hyperparameters(config),
    }
    return _launch(context, pipes_subprocess_client, finsec, mlm_pretrain.ENTRY_MODULE, settings, config, rows)


@dg.asset(group_name=GROUP, deps=ALL_QUARTERS, pool=GPU_POOL, op_tags=GPU_OP_TAGS, kinds={"pytorch", "deepspeed"},
          code_version=TRAINING_CODE_VERSION)
def finetuned_checkpoint(context: dg.AssetExecutionContext, config: FinetunedCheckpointConfig, finsec: FinsecResource,
                         pipes_subprocess_client: dg.PipesSubprocessClient):
    """A causal LM fine-tuned on one company's filings and validated on its held-out MD&A: perplexity
    before/after and sampled generations for JumpStart's prompts (the GPT-J experiment)."""
    cik = config.cik
    if not cik:
        tickers = finsec.edgar().company_tickers()
        cik = tickers.get(config.ticker.upper())
        if cik is None:
            raise dg.Failure(f"finetuned_checkpoint: ticker {config.ticker!r} is not in EDGAR's company_tickers.json; set cik")
    # the default base is pretrained on the other companies, so it needs every company's text
    corpus_uri, data_versions, rows = _training_corpus(finsec, "finetuned_checkpoint",
                                                       ciks=[int(cik)] if config.base else [])
    context.log.info(f"training corpus: {rows:,} sections streamed from the lake to {corpus_uri}")
    settings = {
        "corpus_uri": corpus_uri, "cik": int(cik), "ticker": config.ticker if not config.cik else "",
        "checkpoint_root": finsec.object_store().uri("checkpoints/finetuned_checkpoint"),
        "work_dir": str(finsec.home_path / "work"),
        "base": config.base, "seq_len": config.seq_len, "max_eval_blocks": config.max_eval_blocks,
        "deepspeed": config.deepspeed, "data_versions": data_versions,
        "training": _hyperparameters(config),
        "base_training": _hyperparameters(config, max_steps=config.base_steps, learning_rate=config.base_learning_rate,
                                          warmup_ratio=0.05),
        "generation": {"max_length": config.generation_max_length},
    }
    return _launch(context, pipes_subprocess_client, finsec, clm_finetune.ENTRY_MODULE, settings, config, rows)

