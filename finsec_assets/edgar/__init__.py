"""EDGAR access: HTTP client with SEC fair-access limits, sample mode, and parsers. No dagster here."""
