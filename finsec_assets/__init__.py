"""finsec-assets: SEC EDGAR filings to financial-NLP data and models, as Dagster assets."""

__version__ = "0.1.0"
