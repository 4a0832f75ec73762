"""Settings of a training run: config dataclasses from mappings, overrides, fingerprints and versions.

A run's version is a hash of the code (:func:`code_version`), its inputs and the settings that
change the result (:func:`fingerprint`), so repeating a finished run reuses the stored checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ML_DIR = Path(__file__).resolve().parent.parent
DEEPSPEED_CONFIG_DIR = ML_DIR / "deepspeed_configs"


class TrainingInputError(ValueError):
    """Input a training run cannot use; the message names the input and what is wrong with it."""


def fingerprint(obj: Any, length: int = 16) -> str:
    """A stable short hash of a JSON-able object (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def code_version() -> str:
    """Hash of the training code and DeepSpeed configs: a code change means a new checkpoint version."""
    h = hashlib.sha256()
    files = sorted(Path(__file__).parent.glob("*.py")) + [ML_DIR / "mlm_pretrain.py", ML_DIR / "clm_finetune.py"]
    files += sorted(DEEPSPEED_CONFIG_DIR.glob("*.json"))
    for f in files:
        if f.is_file():
            h.update(f.relative_to(ML_DIR).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


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


def parse_overrides(pairs: Sequence[str]) -> dict:
    """``--set`` pairs (``a.b=1``) as a nested mapping; values parse as JSON where they can."""
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
