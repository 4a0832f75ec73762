"""The lake: partitions replaced in one transaction, snapshots, schema evolution, vectors, on SQLite and Postgres
catalogs with local or moto-S3 data files."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from finsec_assets.settings import Settings
from finsec_assets.storage.lake import Lake, LakeError, extension_path, location_from_settings, open_lake, s3_secret_sql


def make_lake(tmp_path, name="home", **env) -> Lake:
    settings = Settings.from_env({"FINSEC_HOME": str(tmp_path / name), **env})
    return Lake(location_from_settings(settings))


@pytest.fixture(params=["sqlite-local", "sqlite-s3", "postgres-s3"])
def lake(request, tmp_path):
    env = {}
    if request.param.endswith("s3"):
        request.getfixturevalue("moto_s3")
        env["FINSEC_OBJECT_STORE_URL"] = f"s3://finsec-test/{tmp_path.name}-{request.param}"
    if request.param.startswith("postgres"):
        env["FINSEC_CATALOG_URL"] = request.getfixturevalue("lake_postgres_url")
    lake = make_lake(tmp_path, **env)
    yield lake
    lake.close()


def frame(accessions, **extra):
    n = len(accessions)
    return pd.DataFrame({"accession": accessions, "n": np.arange(n), **extra})


def test_extensions_load_from_their_packages():
    for name in ("ducklake", "sqlite_scanner", "postgres_scanner", "httpfs"):
        assert extension_path(name).endswith(f"{name}.duckdb_extension")


def test_replace_partition_never_duplicates_and_snapshots_keep_old_versions(lake):
    s1 = lake.replace_partition("demo", "2024-01-01", frame(["a", "b"]))
    s2 = lake.replace_partition("demo", "2024-04-01", frame(["c", "d"]))
    s3 = lake.replace_partition("demo", "2024-01-01", frame(["a", "b", "e"]))  # a rerun of the quarter
    assert s1 < s2 < s3
    assert sorted(lake.sql("select accession from demo")["accession"]) == ["a", "b", "c", "d", "e"]
    assert lake.partitions("demo") == ["2024-01-01", "2024-04-01"]
    old = lake.sql(f"select accession from lake.demo AT (VERSION => {s2}) where partition_key = '2024-01-01' order by 1")
    assert old["accession"].tolist() == ["a", "b"]  # the previous version is still readable
    snaps = lake.snapshots()
    assert {s1, s2, s3} <= set(snaps["snapshot_id"])
    assert snaps.set_index("snapshot_id").loc[s3, "commit_message"] == "replace demo partition 2024-01-01"
    stored = lake.read_partition("demo", "2024-04-01")
    assert stored["accession"].tolist() == ["c", "d"] and "partition_key" not in stored.columns
    assert lake.read_partition("demo", "1999-01-01").empty and lake.read_partition("missing", "2024-01-01").empty


def test_vectors_stay_fixed_size_arrays_across_partitions(lake):
    vecs = [np.ones(3, np.float32), np.array([1, 0, 0], np.float32)]
    lake.replace_partition("emb", "2024-01-01", frame(["a", "b"], vec=vecs))
    empty = pd.DataFrame({"accession": pd.Series([], dtype=str), "vec": pd.Series([], dtype=object)})
    lake.replace_partition("emb", "2024-04-01", empty)  # an empty quarter must not drop FLOAT[3]
    out = lake.sql("select accession, typeof(vec) t, array_cosine_similarity(vec, [1,1,1]::FLOAT[3]) c from emb order by 1")
    assert out["t"].tolist() == ["FLOAT[3]", "FLOAT[3]"]
    assert out["c"].tolist() == pytest.approx([1.0, 1 / np.sqrt(3)])
    assert dict(lake.columns("emb"))["vec"] == "FLOAT[3]"
    back = lake.read_partition("emb", "2024-01-01")
    assert isinstance(back["vec"][0], np.ndarray) and back["vec"][0].dtype == np.float32


def test_schema_evolves_across_partitions(lake):
    lake.replace_partition("t", "2024-01-01", frame(["a"], note=[None], tags=[[]]))  # all-null, all-empty lists
    lake.replace_partition("t", "2024-04-01", frame(["b"], note=[7], tags=[["x", "y"]], score=[0.5]))  # new column
    lake.replace_partition("t", "2024-07-01", frame(["c"]))  # columns missing: null
    out = lake.sql("select accession, note, tags, score from t order by 1")
    assert out["note"].tolist()[1] == 7 and pd.isna(out["note"][0]) and pd.isna(out["note"][2])
    assert list(out["tags"][1]) == ["x", "y"] and list(out["tags"][0]) == []
    assert out["score"].tolist()[1] == 0.5
    assert dict(lake.columns("t"))["note"] == "BIGINT"  # the all-null guess (text) gave way to the real type
    with pytest.raises(LakeError, match="column 'note' is stored as BIGINT but the new data is VARCHAR"):
        lake.replace_partition("t", "2024-10-01", frame(["d"], note=["not a number"]))
    assert lake.sql("select count(*) n from t")["n"][0] == 3  # the failed write changed nothing
    lake.replace_partition("t", "2024-10-01", frame(["d"], note=[2.5]))  # numbers widen, never round
    assert dict(lake.columns("t"))["note"] == "DOUBLE"
    assert sorted(lake.sql("select note from t where note is not null")["note"]) == [2.5, 7.0]
    lake.replace_partition("t", "2025-01-01", frame(["e"], accession=[20250101]))  # text stays text
    assert dict(lake.columns("t"))["accession"] == "VARCHAR"
    assert "20250101" in lake.sql("select accession from t")["accession"].tolist()


def test_replace_table_takes_the_new_schema(lake):
    s1 = lake.replace_table("corpus", pd.DataFrame({"a": [1, 2]}))
    s2 = lake.replace_table("corpus", pd.DataFrame({"b": ["x"]}))
    assert lake.sql("select * from corpus").to_dict("list") == {"b": ["x"]}
    assert lake.sql(f"select * from lake.corpus AT (VERSION => {s1})")["a"].tolist() == [1, 2]
    assert s2 > s1 and lake.has_table("corpus") and not lake.has_table("nothing")
    assert lake.read_partition("corpus", None)["b"].tolist() == ["x"]


def test_batches_stream(lake):
    lake.replace_partition("big", "2024-01-01", frame([f"a{i}" for i in range(25_000)]))
    sizes = [b.num_rows for b in lake.batches("select accession, n from big where n % 2 = 0", batch_size=4096)]
    assert sum(sizes) == 12_500 and max(sizes) <= 4096 and len(sizes) >= 4
    assert all(isinstance(b, pa.RecordBatch) for b in lake.batches("select 1", batch_size=10))


def test_bad_input_is_named(lake):
    with pytest.raises(LakeError, match="table 'x'.*DataFrame"):
        lake.replace_table("x", [1, 2])
    with pytest.raises(LakeError, match="table name 'x; drop'"):
        lake.replace_table("x; drop", pd.DataFrame({"a": [1]}))
    with pytest.raises(LakeError, match="partition key"):
        lake.replace_partition("x", "", pd.DataFrame({"a": [1]}))


def test_open_lake_is_one_per_location(tmp_path):
    settings = Settings.from_env({"FINSEC_HOME": str(tmp_path)})
    assert open_lake(settings) is open_lake(settings)
    assert not open_lake(settings).has_table("anything") and (tmp_path / "lake.sqlite").exists()


def test_s3_secret_from_aws_variables():
    sql = s3_secret_sql({"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "eu-west-1",
                         "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"})
    assert "KEY_ID 'k'" in sql and "ENDPOINT '127.0.0.1:9000'" in sql and "USE_SSL false" in sql
    assert "REGION 'eu-west-1'" in sql and "URL_STYLE 'path'" in sql


def test_maintenance_merges_expires_and_cleans(tmp_path):
    lake = make_lake(tmp_path)
    for i in range(4):
        lake.replace_partition("m", "2024-01-01", frame([f"a{j}" for j in range(3000)], run=i))
    files_before = len(lake.data_files("m"))
    lake.merge_adjacent_files()
    assert lake.expire_snapshots(older_than_days=0) >= 3
    lake.cleanup_files(older_than_days=0)
    assert lake.sql("select count(*) n, min(run) r from m").iloc[0].tolist() == [3000, 3]
    assert len(lake.data_files("m")) <= files_before
    parquet = list((tmp_path / "home" / "objects" / "lake").rglob("*.parquet"))
    assert len(parquet) == len(lake.data_files("m"))  # the replaced quarters' files are gone


def test_import_of_the_old_parquet_layout(tmp_path):
    import io

    import pyarrow.parquet as pq

    from finsec_assets.storage.migrate import import_old_tables
    from finsec_assets.storage.object_store import ObjectStore
    from finsec_assets.storage.tables import dataframe_to_arrow

    def put(key, df):
        buf = io.BytesIO()
        pq.write_table(dataframe_to_arrow(df), buf)
        store.put_bytes(key, buf.getvalue())

    store = ObjectStore(str(tmp_path / "home" / "objects"))
    vecs = [np.ones(4, np.float32), np.zeros(4, np.float32)]
    put("tables/pooled_embeddings/2024-01-01.parquet", frame(["a", "b"], embedding=vecs))
    put("tables/pooled_embeddings/2024-04-01.parquet", frame(["c"], embedding=vecs[:1]))
    put("tables/company_universe/all.parquet", pd.DataFrame({"cik": [1, 2]}))
    store.put_bytes("tables/pooled_embeddings/.tmp-x2024-07-01.parquet", b"half a file")  # a killed writer's leftover
    lake = make_lake(tmp_path)
    done = import_old_tables(lake, store, log=lambda _: None)
    assert [(d["asset"], d["partition"], d["rows"]) for d in done] == [
        ("company_universe", None, 2), ("pooled_embeddings", "2024-01-01", 2), ("pooled_embeddings", "2024-04-01", 1)]
    assert lake.partitions("pooled_embeddings") == ["2024-01-01", "2024-04-01"]
    assert dict(lake.columns("pooled_embeddings"))["embedding"] == "FLOAT[4]"
    assert lake.sql("select count(*) n from company_universe")["n"][0] == 2
    import_old_tables(lake, store, log=lambda _: None)  # rerun: replaced, not duplicated
    assert lake.sql("select count(*) n from pooled_embeddings")["n"][0] == 3


def test_the_sql_shell_sees_what_python_sees(tmp_path):
    """`make sql` runs `python -m finsec_assets.storage sql`: the DuckDB shell with the lake attached."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    lake = make_lake(tmp_path)
    first = lake.replace_partition("emb", "2024-01-01", frame(["a"], vec=[np.ones(3, np.float32)]))
    lake.replace_partition("emb", "2024-01-01", frame(["a", "b"], vec=[np.ones(3, np.float32)] * 2))
    lake.close()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FINSEC_")}, "FINSEC_HOME": str(tmp_path / "home"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    query = (f"select typeof(vec) t, count(*) n from emb group by 1; "
             f"select count(*) as then_rows from lake.emb AT (VERSION => {first});")
    out = subprocess.run([sys.executable, "-m", "finsec_assets.storage", "sql", query], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "FLOAT[3]" in out.stdout and "then_rows" in out.stdout
    lines = [line for line in out.stdout.splitlines() if "│" in line]
    assert any(line.split("│")[1:3] and line.split("│")[2].strip() == "2" for line in lines)  # two rows now
    assert any(line.split("│")[1].strip() == "1" for line in lines)  # one row at the first snapshot
    tables = subprocess.run([sys.executable, "-m", "finsec_assets.storage", "tables"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert tables.returncode == 0 and "emb" in tables.stdout and "2 rows" in tables.stdout


# -- streamed writes ----------------------------------------------------------------------------------------

def test_streamed_write_equals_one_frame_and_replaces_only_its_partition(lake):
    whole = frame([f"a{i}" for i in range(10)], vec=list(np.random.default_rng(0).random((10, 3), dtype=np.float32)))
    lake.replace_partition("one", "2024-01-01", whole)
    lake.replace_partition("many", "2024-04-01", frame(["other"], vec=[np.zeros(3, np.float32)]))
    lake.replace_partition("many", "2024-01-01", frame(["old"], vec=[np.zeros(3, np.float32)]))
    parts = [whole.iloc[:3], pa.Table.from_pandas(whole.iloc[3:3]), whole.iloc[3:7],
             pa.RecordBatch.from_pandas(whole.iloc[7:].reset_index(drop=True), preserve_index=False)]
    lake.spool_file_bytes = 1  # a spool file a batch, one INSERT each, still one commit
    written = lake.replace_table_batches("many", iter(parts), "2024-01-01")
    assert lake.snapshots()["commit_message"].tolist().count("replace many partition 2024-01-01") == 2
    assert written.rows == 10 and written.snapshot_id == lake.current_snapshot()
    one = lake.sql("select accession, n, vec from one order by n")
    many = lake.sql("select accession, n, vec from many where partition_key = '2024-01-01' order by n")
    pd.testing.assert_frame_equal(one.drop(columns="vec"), many.drop(columns="vec"))
    assert np.array_equal(np.stack(one["vec"]), np.stack(many["vec"]))
    assert lake.columns("many") == lake.columns("one")  # vectors still FLOAT[3]
    assert lake.read_partition("many", "2024-04-01")["accession"].tolist() == ["other"]  # the other quarter untouched


def test_a_failing_stream_leaves_the_previous_version(lake):
    lake.replace_partition("facts", "2024-01-01", frame(["a", "b"]))
    before = lake.current_snapshot()

    def broken():
        yield frame(["x", "y"])
        raise RuntimeError("reader died mid-stream")

    with pytest.raises(RuntimeError, match="mid-stream"):
        lake.replace_table_batches("facts", broken(), "2024-01-01")
    with pytest.raises(LakeError, match="batch 1 has columns"):
        lake.replace_table_batches("facts", iter([frame(["x"]), pd.DataFrame({"other": [1]})]), "2024-01-01")
    with pytest.raises(LakeError, match="column 'n' of batch 1"):
        lake.replace_table_batches("facts", iter([frame(["x"]), pd.DataFrame({"accession": ["y"], "n": ["not a number"]})]))
    assert lake.current_snapshot() == before
    assert lake.read_partition("facts", "2024-01-01")["accession"].tolist() == ["a", "b"]


def test_an_empty_stream_gives_a_typed_empty_table(lake):
    schema = pa.schema([("accession", pa.string()), ("n", pa.int64()), ("flags", pa.list_(pa.string()))])
    written = lake.replace_table_batches("empty", iter([]), "2024-01-01", schema=schema)
    assert written.rows == 0 and lake.read_partition("empty", "2024-01-01").empty
    assert lake.columns("empty") == [("accession", "VARCHAR"), ("n", "BIGINT"), ("flags", "VARCHAR[]"),
                                     ("partition_key", "VARCHAR")]
    lake.replace_table_batches("empty", iter([pd.DataFrame({"accession": ["a"], "n": [1], "flags": [["x"]]})]), "2024-04-01")
    lake.replace_table_batches("empty", iter([]), "2024-04-01")  # no schema: the quarter is emptied, columns kept
    assert lake.sql("select count(*) n from empty")["n"][0] == 0 and len(lake.columns("empty")) == 4
    lake.replace_table_batches("corpus", iter([pd.DataFrame({"a": [None, None]}), pd.DataFrame({"a": [3]})]),
                               schema=pa.schema([("a", pa.int64())]))  # all-null first batch: the schema's type
    assert lake.sql("select a from corpus order by a")["a"].tolist()[:1] == [3] and lake.columns("corpus") == [("a", "BIGINT")]
    empty_first = pd.DataFrame({"tokens": pd.Series([], dtype=object)})  # an empty chunk: its column type is a guess
    lake.replace_table_batches("lists", iter([empty_first, pd.DataFrame({"tokens": [["a", "b"]]})]))
    assert lake.columns("lists") == [("tokens", "VARCHAR[]")]
    lake.replace_table_batches("lists", iter([empty_first]))
    assert lake.columns("lists") == [("tokens", "VARCHAR")] and lake.sql("select count(*) n from lists")["n"][0] == 0
    with pytest.raises(LakeError, match="no batches and no schema"):
        lake.replace_table_batches("never_made", iter([]))


def test_a_frame_read_back_hashes_as_the_frame_written(tmp_path):
    """Lists come back from the lake as object ndarrays, whose raw bytes are pointers: the content hash (a data version)
    of rows read back must equal the hash of the rows written, run after run, or a rerun that reuses rows looks new."""
    from finsec_assets.storage.tables import ContentHasher, content_hash

    lake = make_lake(tmp_path)
    written = frame(["a", "b", "c"], flags=[["toc"], [], ["short", "no_words"]],
                    vec=list(np.arange(9, dtype=np.float32).reshape(3, 3)))
    lake.replace_partition("t", "2024-01-01", written)
    back = [lake.read_partition("t", "2024-01-01") for _ in range(2)]
    assert isinstance(back[0]["flags"][0], np.ndarray) and back[0]["flags"][0].dtype == object
    assert content_hash(back[0]) == content_hash(back[1]) == content_hash(written)
    streamed = ContentHasher(written.columns)
    streamed.update(written.iloc[:1])
    streamed.update(back[0].iloc[1:])  # reused rows after a fresh one, as filing_sections writes them
    assert streamed.hexdigest() == content_hash(written)
    lake.close()
