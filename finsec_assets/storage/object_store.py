"""Blob storage on a local folder or S3, with atomic puts and content hashes.

Every blob, table file and checkpoint goes through here, so switching a deployment
from a laptop to S3 is one setting (``FINSEC_OBJECT_STORE_URL``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import fsspec

DIR_MARKER = "_COMPLETE"
WRITER_CLAIM = ".tmp-writer"  # put_dir's claim on S3; list() skips .tmp- names


class ObjectStoreError(RuntimeError):
    """A blob could not be read or written; the message names the key and the store."""


class PreconditionFailed(ObjectStoreError):
    """A compare-and-set write lost: the object changed (or appeared) since it was read."""


class DirectoryExistsError(ObjectStoreError):
    """put_dir was asked to write over a complete directory; directories are published once."""


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
        """Publish a directory at ``key``, which must be fresh: a complete directory is never
        overwritten (:class:`DirectoryExistsError`), so readers never see one change under them.

        Locally the copy is staged and renamed into place (a rename onto a non-empty directory
        fails, so of two writers one wins). On S3 a writer first claims the key with a create-only
        object (a second writer is refused), uploads, writes the ``_COMPLETE`` marker create-only
        and last, then drops its claim; a failed upload removes what it wrote. A writer killed
        mid-upload leaves an incomplete, claimed prefix that no reader treats as a directory:
        publish under a fresh key (``fresh_key``) rather than reusing one.
        """
        local_dir = Path(local_dir)
        if not local_dir.is_dir():
            raise ObjectStoreError(f"put_dir: {local_dir} is not a directory")
        key = self.key_of(key).rstrip("/")
        if self.is_local:
            self._put_dir_local(local_dir, key)
        else:
            self._put_dir_s3(local_dir, key)
        return self.uri(key)

    def _put_dir_local(self, local_dir: Path, key: str) -> None:
        dest = Path(self._path(key))
        if (dest / DIR_MARKER).exists():
            raise DirectoryExistsError(f"put_dir: {self.uri(key)} is already a complete directory; publish under a fresh key")
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(local_dir, staging)
            (staging / DIR_MARKER).write_text("ok\n")
            if dest.exists():  # an incomplete leftover (no marker): set it aside
                with contextlib.suppress(FileNotFoundError):
                    os.replace(dest, dest.parent / f".tmp-old-{dest.name}-{uuid.uuid4().hex[:8]}")
            try:
                os.rename(staging, dest)  # fails when another writer's directory landed first
            except OSError as exc:
                if (dest / DIR_MARKER).exists():
                    raise DirectoryExistsError(f"put_dir: {self.uri(key)} was published by another writer") from exc
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            for old in dest.parent.glob(f".tmp-old-{dest.name}-*"):
                shutil.rmtree(old, ignore_errors=True)

    def _put_dir_s3(self, local_dir: Path, key: str) -> None:
        marker, claim = f"{key}/{DIR_MARKER}", f"{key}/{WRITER_CLAIM}"
        if self.get_versioned(marker) is not None:
            raise DirectoryExistsError(f"put_dir: {self.uri(key)} is already a complete directory; publish under a fresh key")
        try:
            self.put_bytes_if(claim, f"{uuid.uuid4().hex} {time.time():.3f}\n".encode(), expected=None)
        except PreconditionFailed as exc:
            raise ObjectStoreError(f"put_dir: {self.uri(key)} is being written by another writer (or one that died "
                                   "mid-upload); publish under a fresh key") from exc
        done = False
        try:
            if self.get_versioned(marker) is not None:  # completed between our check and our claim
                raise DirectoryExistsError(f"put_dir: {self.uri(key)} was published by another writer")
            for f in sorted(local_dir.rglob("*")):
                if f.is_file():
                    self.put_file(f"{key}/{f.relative_to(local_dir).as_posix()}", f)
            self.put_bytes_if(marker, b"ok\n", expected=None)
            done = True
        finally:
            if done:
                self.delete(claim)
            else:  # best effort: take back the partial upload, then the claim
                with contextlib.suppress(Exception):
                    for k in self.list(key):
                        self.delete(k)
                with contextlib.suppress(Exception):
                    self.delete(claim)

    def fresh_key(self, parent: str, name: str = "") -> str:
        """A key under ``parent`` that no writer has used: ``<name>.<utc time>-<random>``."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return f"{parent.rstrip('/')}/{name + '.' if name else ''}{stamp}-{uuid.uuid4().hex[:8]}"

    # -- compare-and-set (pointers, counters) ----------------------------------------
    def _bucket_key(self, key: str) -> tuple[str, str]:
        bucket, _, obj = self._path(key).partition("/")
        return bucket, obj

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and a token that changes whenever it is rewritten (S3: the ETag;
        locally: a content hash), read fresh (no listing cache); None when it does not exist."""
        if self.is_local:
            try:
                data = Path(self._path(key)).read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                return None
            return data, sha256_hex(data)
        from fsspec.asyn import sync

        bucket, obj = self._bucket_key(key)

        async def fetch():
            resp = await self.fs._call_s3("get_object", Bucket=bucket, Key=obj)
            body = resp["Body"]
            try:
                return await body.read(), resp["ETag"]
            finally:
                body.close()

        try:
            return sync(self.fs.loop, fetch)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ObjectStoreError(f"could not read {key!r} from {self.url!r}: {exc}") from exc

    def put_bytes_if(self, key: str, data: bytes, expected: str | None) -> str:
        """Compare-and-set: write ``data`` only if the object's token (from :meth:`get_versioned`)
        is still ``expected``, or, with ``expected=None``, only if it does not exist yet; otherwise
        raise :class:`PreconditionFailed`. S3 uses conditional writes (If-Match / If-None-Match);
        a local store compares and renames under an exclusive lock on a sibling lock file."""
        if self.is_local:
            path = Path(self._path(key))
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.parent / f".tmp-lock-{path.name}", "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    current = self.get_versioned(key)
                    if (current is None) != (expected is None) or (current is not None and current[1] != expected):
                        raise PreconditionFailed(f"{self.uri(key)} changed since it was read (expected {expected})")
                    self.put_bytes(key, data)
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
            return sha256_hex(data)
        from fsspec.asyn import sync

        bucket, obj = self._bucket_key(key)
        condition = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
        try:
            resp = sync(self.fs.loop, self.fs._call_s3, "put_object", Bucket=bucket, Key=obj, Body=data, **condition)
        except Exception as exc:  # s3fs maps S3 errors to OSError subclasses; the cause keeps the S3 code
            code = getattr(exc.__cause__, "response", {}).get("Error", {}).get("Code") if exc.__cause__ else None
            lost = code in ("PreconditionFailed", "ConditionalRequestConflict") or "pre-condition" in str(exc).lower()
            if lost or (expected is not None and (code == "NoSuchKey" or isinstance(exc, FileNotFoundError))):
                raise PreconditionFailed(f"{self.uri(key)} changed since it was read (expected {expected})") from exc
            raise ObjectStoreError(f"could not write {key!r} to {self.url!r}: {exc}") from exc
        self.fs.invalidate_cache(self._path(key))
        return resp["ETag"]

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
