"""Publishing checkpoints and keeping resumable state in the object store.

A checkpoint root holds ``versions/<version>/<publication>/`` (each publication a fresh directory,
written through :meth:`~finsec_assets.storage.object_store.ObjectStore.put_dir`, marker last, never
overwritten), ``runs/<run key>/`` (resumable Trainer state) and ``LATEST``, the pointer to the
published directory. The pointer moves by compare-and-set and never backwards: each run draws a
ticket from the root's counter when it starts, and a publication whose ticket is older than the
pointer's is refused, so a slow run that started earlier cannot replace a newer one, and two
concurrent publishers cannot lose each other's update. A failed or interrupted run never moves it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import time
from pathlib import Path

from ...storage.object_store import ObjectStore, ObjectStoreError, PreconditionFailed
from .config import TrainingInputError

MANIFEST = "manifest.json"
LOSS_CURVE = "loss_curve.png"
STAGE_DONE = "stage.json"
CHECKPOINT_FORMAT = "finsec-checkpoint/2"


class CheckpointPublishError(RuntimeError):
    """A checkpoint could not be written; ``LATEST`` still names the previous version."""


def finsec_home() -> Path:
    return Path(os.environ.get("FINSEC_HOME") or "./.finsec").expanduser().resolve()


def default_checkpoint_root(asset_name: str) -> str:
    """Where an asset's checkpoints live: ``checkpoints/<asset>`` in the project's object store."""
    base = os.environ.get("FINSEC_OBJECT_STORE_URL") or str(finsec_home() / "objects")
    return ObjectStore(base).uri(f"checkpoints/{asset_name}")


POINTER = "LATEST"
TICKETS = "TICKETS"
_CAS_ATTEMPTS = 100


@dataclasses.dataclass(frozen=True)
class Publication:
    """The outcome of a publish: where the checkpoint is, and whether ``LATEST`` now names it."""

    uri: str
    version: str
    ticket: int
    latest_moved: bool
    latest_version: str | None  # what LATEST names afterwards (a newer run's version when refused)

    def describe(self) -> str:
        if self.latest_moved:
            return f"published {self.uri}; LATEST names it"
        return f"published {self.uri}; LATEST stays at {self.latest_version}, published by a newer run"


class CheckpointStore:
    """A checkpoint root in the object store: ``versions/<v>/<publication>/``, ``runs/<key>/``,
    ``LATEST`` (a JSON pointer) and ``TICKETS`` (the counter runs draw their order from)."""

    def __init__(self, root_uri: str):
        self.root_uri = str(root_uri)
        try:
            self.store = ObjectStore(self.root_uri)
        except (ValueError, OSError) as exc:
            raise TrainingInputError(f"checkpoint root {self.root_uri!r}: {exc}") from exc

    @property
    def is_local(self) -> bool:
        return self.store.is_local

    # -- the pointer ----------------------------------------------------------------------------
    def _read_pointer(self) -> tuple[dict | None, str | None]:
        got = self.store.get_versioned(POINTER)
        if got is None:
            return None, None
        data, token = got
        return parse_pointer(data), token

    def pointer(self) -> dict | None:
        """``LATEST`` as a mapping: version, directory, ticket, sequence, published_at, previous."""
        return self._read_pointer()[0]

    def latest(self) -> str | None:
        """The version ``LATEST`` names, or None before the first publication."""
        p = self.pointer()
        return p["version"] if p else None

    def latest_dir(self) -> str | None:
        """The key (relative to the root) of the directory ``LATEST`` names."""
        p = self.pointer()
        return p["directory"] if p else None

    def reserve_ticket(self) -> int:
        """The next number of the root's counter (compare-and-set, so no two runs share one). A run
        draws it when it starts; its publication may move ``LATEST`` only past smaller tickets."""
        for attempt in range(_CAS_ATTEMPTS):
            got = self.store.get_versioned(TICKETS)
            last = json.loads(got[0])["last"] if got else 0
            pointer = self.pointer()
            ticket = max(int(last), int(pointer["ticket"]) if pointer else 0) + 1
            try:
                self.store.put_bytes_if(TICKETS, json.dumps({"last": ticket}).encode(), got[1] if got else None)
                return ticket
            except PreconditionFailed:
                _backoff(attempt)
        raise CheckpointPublishError(f"could not draw a ticket from {self.store.uri(TICKETS)}: too much contention")

    def _move_pointer(self, version: str, directory: str, ticket: int) -> tuple[bool, str | None]:
        """Point ``LATEST`` at ``directory`` unless it names a newer ticket; compare-and-set, retried."""
        for attempt in range(_CAS_ATTEMPTS):
            current, token = self._read_pointer()
            if current is not None and int(current["ticket"]) > ticket:
                return False, current["version"]
            pointer = {
                "version": version, "directory": directory, "ticket": int(ticket),
                "sequence": (int(current.get("sequence", 0)) if current else 0) + 1,
                "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "previous": None if current is None else {k: current.get(k) for k in ("version", "directory", "ticket")},
            }
            try:
                self.store.put_bytes_if(POINTER, (json.dumps(pointer, indent=1) + "\n").encode(), token)
                return True, version
            except PreconditionFailed:
                _backoff(attempt)
        raise CheckpointPublishError(f"could not move {self.store.uri(POINTER)}: too much contention")

    # -- versions ---------------------------------------------------------------------------------
    def publication_dir(self, version: str) -> str | None:
        """The key of a complete publication of ``version`` (the newest), or None."""
        prefix = f"versions/{version}"
        if self.store.is_complete_dir(prefix):  # published by an older layout, files directly under it
            return prefix
        names = {k[len(prefix) + 1:].split("/")[0] for k in self.store.list(prefix)}
        complete = [n for n in names if self.store.is_complete_dir(f"{prefix}/{n}")]
        return f"{prefix}/{max(complete)}" if complete else None

    def is_published(self, version: str) -> bool:
        return self.publication_dir(version) is not None

    def version_uri(self, version: str) -> str:
        directory = self.publication_dir(version)
        if directory is None:
            raise CheckpointPublishError(f"version {version} has no complete publication under {self.root_uri}")
        return self.store.uri(directory)

    def read_manifest(self, version: str) -> dict:
        return json.loads(self.store.get_bytes(f"{self.publication_dir(version)}/{MANIFEST}"))

    def publish(self, local_dir: Path, version: str, ticket: int | None = None) -> Publication:
        """Upload ``local_dir`` as a fresh ``versions/<version>/<publication>/`` (marker last), then
        move ``LATEST`` to it unless a run with a newer ticket already published. ``ticket``: the one
        the run drew when it started (default: a new one, i.e. this publication is the newest)."""
        previous = self.latest()
        try:
            ticket = self.reserve_ticket() if ticket is None else int(ticket)
            directory = self.store.fresh_key(f"versions/{version}", f"t{ticket:09d}")
            self.store.put_dir(local_dir, directory)
            moved, latest = self._move_pointer(version, directory, ticket)
        except (OSError, ObjectStoreError) as exc:
            raise CheckpointPublishError(
                f"could not publish checkpoint {version} to {self.root_uri}: {exc}; "
                f"LATEST still points to {previous or 'nothing (no checkpoint published yet)'}"
            ) from exc
        return Publication(self.store.uri(directory), version, ticket, moved, latest)

    def republish(self, version: str, ticket: int | None = None) -> Publication:
        """Point ``LATEST`` at an already complete version (a repeated run with the same inputs)."""
        directory = self.publication_dir(version)
        if directory is None:
            raise CheckpointPublishError(f"cannot republish {version}: no complete publication under {self.root_uri}")
        try:
            ticket = self.reserve_ticket() if ticket is None else int(ticket)
            moved, latest = self._move_pointer(version, directory, ticket)
        except (OSError, ObjectStoreError) as exc:
            raise CheckpointPublishError(f"could not update LATEST in {self.root_uri}: {exc}") from exc
        return Publication(self.store.uri(directory), version, ticket, moved, latest)

    def run_state(self, run_key: str, local_work_root: str | os.PathLike | None = None) -> RunState:
        return RunState(self, run_key, local_work_root)


def parse_pointer(data: bytes) -> dict:
    """``LATEST``: the JSON pointer, or the bare version name an older layout wrote (ticket -1, so
    any new publication moves past it)."""
    text = data.decode().strip()
    if text.startswith("{"):
        return json.loads(text)
    return {"version": text, "directory": f"versions/{text}", "ticket": -1, "sequence": 0}


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0.005, 0.02) * min(attempt + 1, 10))


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


def _step_of(name: str) -> int | None:
    """N of a mirrored ``checkpoint-N.<stamp>`` directory name."""
    head = name.split(".")[0]
    if not head.startswith("checkpoint-"):
        return None
    try:
        return int(head[len("checkpoint-"):])
    except ValueError:
        return None


class RunState:
    """Where one training stage keeps resumable state.

    With a local checkpoint root the Trainer writes straight into ``runs/<key>/``. With a
    remote root (S3) it writes to a local work directory and each saved checkpoint is
    mirrored to a fresh ``runs/<key>/checkpoint-N.<stamp>`` (complete marker last), the finished
    stage to ``runs/<key>/final.<stamp>``, so a run relaunched on another machine (a Kubernetes
    pod) resumes from the newest complete one and nothing is overwritten in place.
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

    def _remote_children(self) -> dict[str, bool]:
        """Names directly under the run's remote prefix, and whether each is a complete directory."""
        names = {k[len(self.prefix) + 1:].split("/")[0] for k in self.remote.list(self.prefix)}
        return {n: self.remote.is_complete_dir(f"{self.prefix}/{n}") for n in names}

    def final_ready(self) -> bool:
        """A finished stage: local final/ with stage.json, or a complete remote copy (downloaded)."""
        if (self.final_dir / STAGE_DONE).is_file():
            return True
        if self.remote is not None:
            finals = sorted(n for n, ok in self._remote_children().items() if ok and n.split(".")[0] == "final")
            if finals:
                shutil.rmtree(self.final_dir, ignore_errors=True)
                self.remote.get_dir(f"{self.prefix}/{finals[-1]}", self.final_dir)
                return (self.final_dir / STAGE_DONE).is_file()
        return False

    def mark_final(self, stage: dict) -> None:
        tmp = self.final_dir / f".tmp-{STAGE_DONE}"
        tmp.write_text(json.dumps(stage, indent=2, default=str))
        os.replace(tmp, self.final_dir / STAGE_DONE)
        if self.remote is not None:
            self.remote.put_dir(self.final_dir, self.remote.fresh_key(self.prefix, "final"))

    def restore(self) -> Path | None:
        """The checkpoint to resume from: the newest complete one, here or (fetched) in the remote root."""
        local = last_complete_checkpoint(self.work_dir)
        if self.remote is None:
            return local
        local_step = int(local.name.split("-")[-1]) if local is not None else -1
        remote = sorted((_step_of(n), n) for n, ok in self._remote_children().items() if ok and _step_of(n) is not None)
        if not remote or remote[-1][0] <= local_step:
            return local
        step, name = remote[-1]
        target = self.work_dir / f"checkpoint-{step}"
        shutil.rmtree(target, ignore_errors=True)
        self.remote.get_dir(f"{self.prefix}/{name}", target)
        return last_complete_checkpoint(self.work_dir)

    def mirror(self, checkpoint_dir: Path) -> None:
        if self.remote is None:
            return
        self.remote.put_dir(checkpoint_dir, self.remote.fresh_key(self.prefix, checkpoint_dir.name))
        children = self._remote_children()
        complete = sorted((_step_of(n), n) for n, ok in children.items() if ok and _step_of(n) is not None)
        keep = {n for _, n in complete[-self.keep_remote:]}
        newest = complete[-1][0] if complete else 0
        for name in children:
            step = _step_of(name)
            # older complete copies go; so do incomplete leftovers of steps already superseded
            if step is not None and name not in keep and (children[name] or step < newest):
                self.remote.delete(f"{self.prefix}/{name}")

    def cleanup(self, keep_final: bool) -> None:
        """Drop resumable state after publishing (optimizer states are large)."""
        for d in self.work_dir.glob("checkpoint-*"):
            shutil.rmtree(d, ignore_errors=True)
        if not keep_final:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        if self.remote is not None:
            if keep_final:
                for name in self._remote_children():
                    if _step_of(name) is not None:
                        self.remote.delete(f"{self.prefix}/{name}")
            else:
                self.remote.delete(self.prefix)


def checkpoint_summary(publication: Publication, manifest: dict, reused: bool) -> dict:
    """What an entry point reports about the checkpoint it published (or reused): plain values, which
    the asset turns into Dagster metadata."""
    metrics = manifest["metrics"]
    return {
        "checkpoint_uri": publication.uri,
        "version": manifest["version"],
        "perplexity_before": metrics["perplexity_before"],
        "perplexity_after": metrics["perplexity_after"],
        "tokens_seen": int(manifest["tokens_seen"]),
        "tokens_per_second": float(metrics["tokens_per_second"]),
        "metrics": metrics,
        "reused": reused,
        "ticket": publication.ticket,
        "latest_moved": publication.latest_moved,
        "latest_version": publication.latest_version,
        "manifest": manifest,
    }
