"""Table store (Parquet per asset partition), object store (local or S3) and the DuckDB catalog."""
