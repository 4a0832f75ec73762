"""ObjectStore directories and compare-and-set, locally and on a moto S3 server: a complete
directory is never overwritten, two writers of one key cannot interleave, and a conditional write
loses when the object changed since it was read."""

from __future__ import annotations

import pytest

from finsec_assets.storage.object_store import DirectoryExistsError, ObjectStore, ObjectStoreError, PreconditionFailed


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return ObjectStore(str(tmp_path / "objects"))
    request.getfixturevalue("moto_s3")
    return ObjectStore(f"s3://finsec-test/{tmp_path.name}")


def _dir(path, marker):
    path.mkdir(parents=True, exist_ok=True)
    (path / "a.txt").write_text(marker)
    (path / "sub").mkdir(exist_ok=True)
    (path / "sub" / "b.txt").write_text(marker)
    return path


def test_a_complete_directory_is_never_overwritten(store, tmp_path):
    store.put_dir(_dir(tmp_path / "one", "first"), "d/x")
    with pytest.raises(DirectoryExistsError, match="already a complete directory"):
        store.put_dir(_dir(tmp_path / "two", "second"), "d/x")
    out = store.get_dir("d/x", tmp_path / "out")
    assert (out / "a.txt").read_text() == "first" and (out / "sub" / "b.txt").read_text() == "first"
    assert store.list("d/x") == ["d/x/_COMPLETE", "d/x/a.txt", "d/x/sub/b.txt"]  # no claim or staging debris
    fresh = store.fresh_key("d", "x")
    assert fresh.startswith("d/x.") and fresh != store.fresh_key("d", "x")
    store.put_dir(tmp_path / "two", fresh)
    assert store.get_bytes(f"{fresh}/a.txt") == b"second"


def test_compare_and_set(store):
    with pytest.raises(PreconditionFailed):
        store.put_bytes_if("p", b"1", expected="nope")  # absent, but a token was expected
    token = store.put_bytes_if("p", b"1", expected=None)
    assert store.get_versioned("p") == (b"1", token)
    with pytest.raises(PreconditionFailed):
        store.put_bytes_if("p", b"2", expected=None)  # create-only, and it exists
    token2 = store.put_bytes_if("p", b"2", expected=token)
    with pytest.raises(PreconditionFailed):
        store.put_bytes_if("p", b"3", expected=token)  # stale token
    assert store.get_versioned("p") == (b"2", token2) and store.get_versioned("missing") is None


def test_a_second_s3_writer_of_the_same_key_is_refused_while_the_first_uploads(moto_s3, tmp_path, monkeypatch):
    store = ObjectStore("s3://finsec-test/claims")
    other = ObjectStore("s3://finsec-test/claims")
    real_put = store.fs.put_file
    seen = []

    def second_writer_arrives(*a, **kw):
        if not seen:
            seen.append(1)
            with pytest.raises(ObjectStoreError, match="being written by another writer"):
                other.put_dir(_dir(tmp_path / "intruder", "intruder"), "d/x")
        return real_put(*a, **kw)

    monkeypatch.setattr(store.fs, "put_file", second_writer_arrives)
    store.put_dir(_dir(tmp_path / "one", "first"), "d/x")
    assert seen and other.get_bytes("d/x/a.txt") == b"first" and other.get_bytes("d/x/sub/b.txt") == b"first"
    other.fs.invalidate_cache()
    assert other.is_complete_dir("d/x") and not [p for p in other.fs.find(other._path("d/x")) if ".tmp-" in p]
