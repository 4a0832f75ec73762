"""The object store, locally and on a moto S3 server (tables: test_lake.py)."""

import pytest

from finsec_assets.storage.object_store import ObjectStore, ObjectStoreError, sha256_hex


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return ObjectStore(str(tmp_path / "objects"))
    request.getfixturevalue("moto_s3")
    return ObjectStore(f"s3://finsec-test/{tmp_path.name}")


def test_bytes_roundtrip_and_errors(store):
    uri = store.put_bytes("a/b.txt", b"hello")
    assert store.exists("a/b.txt") and store.get_bytes(uri) == b"hello" == store.get_bytes("a/b.txt")
    assert sha256_hex(b"hello").startswith("2cf24dba")
    with pytest.raises(ObjectStoreError, match="not found"):
        store.get_bytes("a/missing.txt")
    with pytest.raises(ValueError, match="inside the store"):
        store.put_bytes("../escape", b"x")


def test_directories_publish_complete_or_not_at_all(store, tmp_path):
    src = tmp_path / "ckpt"
    (src / "sub").mkdir(parents=True)
    (src / "manifest.json").write_text("{}")
    (src / "sub" / "w.bin").write_bytes(b"\x00" * 10)
    store.put_dir(src, "checkpoints/x/v1")
    assert store.is_complete_dir("checkpoints/x/v1")
    out = store.get_dir("checkpoints/x/v1", tmp_path / "out")
    assert (out / "sub" / "w.bin").read_bytes() == b"\x00" * 10
    store.put_bytes("checkpoints/x/v2/manifest.json", b"{}")  # no marker: half-written
    with pytest.raises(ObjectStoreError, match="not a complete directory"):
        store.get_dir("checkpoints/x/v2", tmp_path / "out2")
