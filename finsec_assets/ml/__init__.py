"""Pure machine-learning library: embeddings, language-model training entry points, Altman simulation, rating models.

Kept free of imports so that ``import finsec_assets.ml.altman`` does not pull in torch.
"""
