"""Dagster wiring only: one subpackage per domain (edgar, text, embeddings, language_models, credit)."""
