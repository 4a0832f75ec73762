"""Object store, Parquet tables and the DuckDB catalog, locally and on a moto S3 server."""

import numpy as np
import pandas as pd
import pytest

from finsec_assets.storage.catalog import query, refresh_catalog_entry
from finsec_assets.storage.object_store import ObjectStore, ObjectStoreError, sha256_hex
from finsec_assets.storage.tables import read_table, stored_partitions, write_table


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


def test_tables_partitions_and_catalog(store, tmp_path):
    df = pd.DataFrame({"accession": ["a", "b"], "n": [1, 2], "vec": [np.ones(3, np.float32), np.zeros(3, np.float32)]})
    _, table, _ = write_table(store, "demo", "2024-01-01", df)
    write_table(store, "demo", "2024-04-01", df.assign(accession=["c", "d"]))
    write_table(store, "demo", "2024-01-01", df)  # rewrite a quarter: replaces, never duplicates
    assert stored_partitions(store, "demo") == ["2024-01-01", "2024-04-01"]
    assert sorted(read_table(store, "demo")["accession"]) == ["a", "b", "c", "d"]
    assert list(read_table(store, "demo", ["2024-04-01", "1999-01-01"])["accession"]) == ["c", "d"]
    wh = tmp_path / "warehouse.duckdb"
    refresh_catalog_entry(wh, store, "demo", table.schema)
    out = query(wh, "select accession, array_cosine_similarity(vec, [1,1,1]::FLOAT[3]) c from demo order by 1")
    assert list(out["accession"]) == ["a", "b", "c", "d"] and out["c"][0] == pytest.approx(1.0)


def test_table_write_rejects_non_dataframes(store):
    with pytest.raises(TypeError, match="asset 'x'.*DataFrame"):
        write_table(store, "x", None, [1, 2])


def test_empty_partition_keeps_the_vector_type(tmp_path):
    store = ObjectStore(str(tmp_path / "objects"))
    df = pd.DataFrame({"accession": ["a"], "vec": [np.ones(3, np.float32)]})
    _, t1, _ = write_table(store, "emb", "2024-01-01", df)
    _, t2, _ = write_table(store, "emb", "2024-04-01", pd.DataFrame({"accession": pd.Series([], dtype=str),
                                                                       "vec": pd.Series([], dtype=object)}))
    wh = tmp_path / "warehouse.duckdb"
    refresh_catalog_entry(wh, store, "emb", t2.schema)  # the last write is the empty quarter
    out = query(wh, "select array_cosine_similarity(vec, vec) c from emb")
    assert out["c"][0] == pytest.approx(1.0)
