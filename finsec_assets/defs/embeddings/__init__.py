"""Embeddings domain: pooled_embeddings (and its checks, which run inside its step)."""
