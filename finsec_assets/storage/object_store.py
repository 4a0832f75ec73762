"""Blob storage on a local folder or S3, with atomic puts and content hashes.

Every blob, table file and checkpoint goes through here, so switching a deployment
from a laptop to S3 is one setting (``FINSEC_OBJECT_STORE_URL``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import fsspec

DIR_MARKER = "_COMPLETE"


class ObjectStoreError(RuntimeError):
    """A blob could not be read or written; the message names the key and the store."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class ObjectStore:
    """A prefix in a filesystem (``file`` or ``s3``) addressed by relative keys.

    Writes are atomic: local files are written to a temporary name and renamed;
    S3 objects are a single PUT. Directories (checkpoints) are published by writing
    a ``_COMPLETE`` marker last, so readers never see half of one.
    """

    url: str
    storage_options: dict | None = None

    def __post_init__(self) -> None:
        parsed = urlparse(self.url)
        self.protocol = parsed.scheme or "file"
        if self.protocol not in ("file", "s3"):
            raise ValueError(
                f"object store URL {self.url!r}: unsupported scheme {self.protocol!r} "
                "(use a local path, file://... or s3://bucket/prefix)"
            )
        if self.protocol == "file":
            root = parsed.path if parsed.scheme else self.url
            self.root = str(Path(root).expanduser().resolve())
            Path(self.root).mkdir(parents=True, exist_ok=True)
            self.fs = fsspec.filesystem("file")
        else:
            if not parsed.netloc:
                raise ValueError(f"object store URL {self.url!r}: missing bucket name (s3://bucket/prefix)")
            self.root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
            opts = dict(self.storage_options or {})
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            if endpoint and "endpoint_url" not in opts:
                opts["endpoint_url"] = endpoint
            self.storage_options = opts
            self.fs = fsspec.filesystem("s3", **opts)

    # -- addressing -------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def _path(self, key_or_uri: str) -> str:
        key = self.key_of(key_or_uri)
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"object key {key!r} must be relative and stay inside the store")
        return f"{self.root}/{key}" if key else self.root

    def key_of(self, key_or_uri: str) -> str:
        base = self.uri("")
        if key_or_uri.startswith(base):
            return key_or_uri[len(base):].lstrip("/")
        if "://" in key_or_uri:
            raise ValueError(f"{key_or_uri!r} is not inside the object store {base!r}")
        return key_or_uri

    def uri(self, key: str) -> str:
        prefix = "file://" if self.is_local else "s3://"
        return f"{prefix}{self.root}/{key}" if key else f"{prefix}{self.root}"

    def local_path(self, key_or_uri: str) -> Path:
        if not self.is_local:
            raise ObjectStoreError(f"{key_or_uri!r}: the object store {self.url!r} is not local")
        return Path(self._path(key_or_uri))

    # -- bytes ------------------------------------------------------------------
    def exists(self, key_or_uri: str) -> bool:
        return self.fs.exists(self._path(key_or_uri))

    def put_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        try:
            if self.is_local:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=Path(path).parent, prefix=".tmp-", suffix=Path(path).name)
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, path)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            else:
                self.fs.pipe_file(path, data)  # one PUT: atomic on S3
        except OSError as exc:
            raise ObjectStoreError(f"could not write {key!r} to {self.url!r}: {exc}") from exc
        return self.uri(key)

    def put_file(self, key: str, local_file: str | Path) -> str:
        if self.is_local:
            return self.put_bytes(key, Path(local_file).read_bytes())
        try:
            self.fs.put_file(str(local_file), self._path(key))
        except OSError as exc:
            raise ObjectStoreError(f"could not upload {local_file} to {key!r} in {self.url!r}: {exc}") from exc
        return self.uri(key)

    def get_bytes(self, key_or_uri: str) -> bytes:
        try:
            return self.fs.cat_file(self._path(key_or_uri))
        except FileNotFoundError as exc:
            raise ObjectStoreError(f"{key_or_uri!r} not found in object store {self.url!r}") from exc

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (recursive), skipping temporary files."""
        base = self._path(prefix)
        if not self.fs.exists(base):
            return []
        root = self.root.rstrip("/") + "/"
        out = []
        for path in self.fs.find(base):
            rel = path[len(root):] if path.startswith(root) else path.split(root, 1)[-1]
            if not any(part.startswith(".tmp-") for part in rel.split("/")):
                out.append(rel)
        return sorted(out)

    def delete(self, key: str) -> None:
        path = self._path(key)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    # -- directories (checkpoints) -------------------------------------------------
    def put_dir(self, local_dir: str | Path, key: str) -> str:
        """Upload a directory; the marker written last makes it visible as complete."""
        local_dir = Path(local_dir)
        if not local_dir.is_dir():
            raise ObjectStoreError(f"put_dir: {local_dir} is not a directory")
        if self.is_local:
            dest = Path(self._path(key))
            staging = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}"
            shutil.copytree(local_dir, staging)
            (staging / DIR_MARKER).write_text("ok\n")
            if dest.exists():
                old = dest.parent / f".tmp-old-{dest.name}-{uuid.uuid4().hex[:8]}"
                os.replace(dest, old)
                os.replace(staging, dest)
                shutil.rmtree(old, ignore_errors=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging, dest)
        else:
            self.delete(f"{key}/{DIR_MARKER}")
            for f in sorted(local_dir.rglob("*")):
                if f.is_file():
                    self.put_file(f"{key}/{f.relative_to(local_dir).as_posix()}", f)
            self.put_bytes(f"{key}/{DIR_MARKER}", b"ok\n")
        return self.uri(key)

    def is_complete_dir(self, key_or_uri: str) -> bool:
        return self.exists(f"{self.key_of(key_or_uri).rstrip('/')}/{DIR_MARKER}")

    def get_dir(self, key_or_uri: str, local_dir: str | Path) -> Path:
        key = self.key_of(key_or_uri).rstrip("/")
        if not self.is_complete_dir(key):
            raise ObjectStoreError(f"{key_or_uri!r} in {self.url!r} is not a complete directory (no {DIR_MARKER})")
        local_dir = Path(local_dir)
        local_dir.mkdir(parents=True, exist_ok=True)
        for k in self.list(key):
            rel = k[len(key) + 1:]
            if rel == DIR_MARKER:
                continue
            target = local_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.get_bytes(k))
        return local_dir


def open_object_store(url: str, storage_options: dict | None = None) -> ObjectStore:
    return ObjectStore(url, storage_options)
