"""The lake (DuckLake tables: a SQL catalog plus Parquet in the object store) and the object store (local or S3)."""
