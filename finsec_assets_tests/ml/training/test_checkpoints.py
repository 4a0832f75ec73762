"""Publishing checkpoints (local and S3): fresh directories, a LATEST pointer that never moves
backwards under concurrent publishers, and resumable run state mirrored to the object store."""

from __future__ import annotations

import json
import multiprocessing
import shutil

import pytest

from finsec_assets.ml import training as tc
from finsec_assets.storage import object_store

from .helpers import checkpoint_dir


def test_publish_flips_latest_last_and_a_failed_write_keeps_the_previous_one(tmp_path, monkeypatch):
    root = tc.CheckpointStore(str(tmp_path / "ckpt"))
    assert root.latest() is None and root.pointer() is None
    first = root.publish(checkpoint_dir(tmp_path / "one"), "v1")
    assert root.latest() == "v1" and root.is_published("v1") and first.latest_moved
    assert first.uri == root.version_uri("v1") and "/versions/v1/t" in first.uri
    assert root.read_manifest("v1")["file"] == "manifest.json"

    real_copytree, copied = shutil.copytree, []

    def disk_fills_up(src, dst, *a, **kw):
        def copy(s, d, **k):
            if len(copied) == 2:
                raise OSError(28, "No space left on device")
            copied.append(s)
            return shutil.copy2(s, d, **k)

        return real_copytree(src, dst, copy_function=copy)

    monkeypatch.setattr(object_store.shutil, "copytree", disk_fills_up)
    with pytest.raises(tc.CheckpointPublishError, match=r"could not publish checkpoint v2 .*No space left.*LATEST still points to v1"):
        root.publish(checkpoint_dir(tmp_path / "two"), "v2")
    monkeypatch.undo()
    assert root.latest() == "v1" and not root.is_published("v2")
    assert tc.resolve_model_source(str(tmp_path / "ckpt")).parent.name == "v1"
    assert not [p for p in (tmp_path / "ckpt" / "versions").rglob("*") if p.name.startswith(".tmp-")]  # no debris


def test_republishing_the_same_version_writes_a_fresh_directory_never_over_the_old_one(tmp_path):
    root = tc.CheckpointStore(str(tmp_path / "ckpt"))
    a = root.publish(checkpoint_dir(tmp_path / "a", "first"), "v1")
    b = root.publish(checkpoint_dir(tmp_path / "b", "second"), "v1")
    assert a.uri != b.uri and b.ticket > a.ticket
    assert json.loads((root.store.local_path(a.uri) / "config.json").read_text())["marker"] == "first"  # untouched
    assert root.latest_dir() == root.store.key_of(b.uri)
    with pytest.raises(object_store.DirectoryExistsError):
        root.store.put_dir(tmp_path / "a", root.store.key_of(a.uri))


def test_an_older_run_that_finishes_last_does_not_move_latest_backwards(tmp_path):
    root = tc.CheckpointStore(str(tmp_path / "ckpt"))
    slow, fast = root.reserve_ticket(), root.reserve_ticket()  # the slow run started first
    assert fast == slow + 1
    done_fast = root.publish(checkpoint_dir(tmp_path / "fast"), "v-fast", fast)
    done_slow = root.publish(checkpoint_dir(tmp_path / "slow"), "v-slow", slow)
    assert done_fast.latest_moved and not done_slow.latest_moved and done_slow.latest_version == "v-fast"
    assert root.latest() == "v-fast" and root.is_published("v-slow")  # published, just not current
    pointer = root.pointer()
    assert pointer["ticket"] == fast and pointer["sequence"] == 1 and pointer["previous"] is None
    again = root.republish("v-slow")  # a new run (new ticket) that wants v-slow may point at it
    assert again.latest_moved and root.latest() == "v-slow" and root.pointer()["sequence"] == 2
    assert root.pointer()["previous"]["version"] == "v-fast"


def test_a_root_written_by_the_previous_layout_still_resolves_and_is_moved_past(tmp_path):
    old = tmp_path / "ckpt"
    (old / "versions").mkdir(parents=True)
    shutil.copytree(checkpoint_dir(tmp_path / "legacy", "legacy"), old / "versions" / "v0")
    (old / "versions" / "v0" / "_COMPLETE").write_text("ok\n")
    (old / "LATEST").write_text("v0\n")
    root = tc.CheckpointStore(str(old))
    assert root.latest() == "v0" and root.is_published("v0") and root.pointer()["ticket"] == -1
    assert tc.resolve_model_source(str(old)) == old / "versions" / "v0"
    assert root.publish(checkpoint_dir(tmp_path / "new"), "v1").latest_moved and root.latest() == "v1"


def _publish_many(root_uri: str, env: dict, worker: int, n: int, src: str, queue) -> None:
    import os

    os.environ.update(env)
    root = tc.CheckpointStore(root_uri)
    for i in range(n):
        ticket = root.reserve_ticket()
        publication = root.publish(src, f"w{worker}-{i}", ticket)
        queue.put((ticket, publication.version, publication.latest_moved))


def _race(root_uri: str, tmp_path, env: dict, workers: int = 4, each: int = 3) -> list[tuple[int, str, bool]]:
    src = checkpoint_dir(tmp_path / "src")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_publish_many, args=(root_uri, env, w, each, str(src), queue)) for w in range(workers)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in range(workers * each)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return results


def _check_race(root: tc.CheckpointStore, results) -> None:
    tickets = [t for t, _, _ in results]
    assert len(set(tickets)) == len(tickets)  # the counter never hands one ticket out twice
    newest_ticket, newest_version, _ = max(results)
    assert root.pointer()["ticket"] == newest_ticket and root.latest() == newest_version
    assert root.pointer()["sequence"] == sum(moved for _, _, moved in results)  # every move was one CAS
    assert all(root.is_published(v) for _, v, _ in results)


def test_concurrent_publishers_never_regress_the_pointer_locally(tmp_path):
    root_uri = str(tmp_path / "ckpt")
    results = _race(root_uri, tmp_path, {})
    _check_race(tc.CheckpointStore(root_uri), results)


def test_concurrent_publishers_never_regress_the_pointer_on_s3(moto_s3, tmp_path):
    import os

    root_uri = "s3://finsec-test/checkpoints/race"
    env = {k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    results = _race(root_uri, tmp_path, env, workers=3, each=2)
    _check_race(tc.CheckpointStore(root_uri), results)


def test_s3_publish_resolve_and_resume_state_mirror(moto_s3, tmp_path, monkeypatch):
    root_uri = "s3://finsec-test/checkpoints/unit"
    root = tc.CheckpointStore(root_uri)
    root.publish(checkpoint_dir(tmp_path / "one", "first"), "v1")
    assert root.latest() == "v1"
    local = tc.resolve_model_source(root_uri, cache_dir=tmp_path / "cache")
    assert json.loads((local / "config.json").read_text())["marker"] == "first"
    assert not (local / "_COMPLETE").exists()

    real_put = root.store.fs.put_file
    calls = []

    def flaky_put(*a, **kw):
        calls.append(a)
        if len(calls) == 2:
            raise OSError("connection reset by peer")
        return real_put(*a, **kw)

    monkeypatch.setattr(root.store.fs, "put_file", flaky_put)
    with pytest.raises(tc.CheckpointPublishError, match="LATEST still points to v1"):
        root.publish(checkpoint_dir(tmp_path / "two", "second"), "v2")
    monkeypatch.undo()
    assert root.latest() == "v1" and not root.is_published("v2")
    assert not root.store.list("versions/v2")  # the failed upload took its files back

    slow, fast = root.reserve_ticket(), root.reserve_ticket()
    assert root.publish(checkpoint_dir(tmp_path / "fast", "fast"), "v3", fast).latest_moved
    assert not root.publish(checkpoint_dir(tmp_path / "slow", "slow"), "v4", slow).latest_moved
    assert root.latest() == "v3"
    local = tc.resolve_model_source(root_uri, cache_dir=tmp_path / "cache")
    assert json.loads((local / "config.json").read_text())["marker"] == "fast"

    # resumable state written on one machine is found by a fresh work directory on another
    run = tc.CheckpointStore(root_uri).run_state("run-a", tmp_path / "machine-1")
    for step in (2, 4, 6):
        ckpt = checkpoint_dir(run.work_dir / f"checkpoint-{step}", f"step{step}")
        (ckpt / "trainer_state.json").write_text("{}")
        run.mirror(ckpt)
    mirrored = {k.split("/")[2].split(".")[0] for k in root.store.list("runs/run-a")}
    assert mirrored == {"checkpoint-4", "checkpoint-6"}  # keep_remote = 2
    elsewhere = tc.CheckpointStore(root_uri).run_state("run-a", tmp_path / "machine-2")
    restored = elsewhere.restore()
    assert restored == tmp_path / "machine-2" / "run-a" / "checkpoint-6"
    assert json.loads((restored / "config.json").read_text())["marker"] == "step6"
    elsewhere.final_dir.mkdir()
    elsewhere.mark_final({"global_step": 6})
    third = tc.CheckpointStore(root_uri).run_state("run-a", tmp_path / "machine-3")
    assert third.final_ready() and json.loads((third.final_dir / "stage.json").read_text())["global_step"] == 6
    elsewhere.cleanup(keep_final=False)
    assert tc.CheckpointStore(root_uri).run_state("run-a", tmp_path / "machine-4").restore() is None
